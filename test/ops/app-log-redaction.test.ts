/**
 * The app log's redaction backstop (src/logging.ts): what reaches the JSON lines when code logs
 * a secret-named field by mistake. The end-to-end "no secret in any log" test is in
 * test/http/audit-trail.test.ts; this one pins the rule itself.
 */
import { describe, expect, it } from 'vitest';
import { captureAppLog as capture } from '../helpers/app-log-capture.js';

describe('app log redaction backstop', () => {
  it('censors secret-named fields at the top level and one level down', () => {
    const log = capture();
    const headers = Object.assign(Object.create(null) as Record<string, string>, { authorization: 'Bearer SECRET-1', 'user-agent': 'ua' });
    log.logger.info({ token: 'SECRET-2', headers, body: { plaintext: 'SECRET-3', aad: 'SECRET-4', keyId: 'alias/x' } }, 'oops');
    log.logger.warn({ datakey: { plaintextKey: 'SECRET-5', wrappedKey: 'SECRET-6' }, cookie: 'SECRET-7', ciphertext: 'SECRET-8' }, 'oops');
    expect(log.text()).not.toContain('SECRET');
    const [first, second] = log.lines;
    expect(first).toMatchObject({ token: '[REDACTED]', headers: { authorization: '[REDACTED]', 'user-agent': 'ua' }, body: { plaintext: '[REDACTED]', keyId: 'alias/x' } });
    expect(second).toMatchObject({ datakey: { plaintextKey: '[REDACTED]', wrappedKey: '[REDACTED]' }, cookie: '[REDACTED]' });
  });

  it('does not mutate the objects it was given', () => {
    const log = capture();
    const body = { plaintext: 'SECRET' };
    const fields = { body };
    log.logger.info(fields, 'oops');
    expect(fields.body).toBe(body);
    expect(body.plaintext).toBe('SECRET');
  });

  it('leaves ordinary lines alone, including deeper user data that merely has such a name', () => {
    const log = capture();
    log.logger.info({ keyArn: 'arn:x', request: { context: { token: 'tenant-token-label' } } }, 'fine');
    expect(log.lines[0]).toMatchObject({ keyArn: 'arn:x', request: { context: { token: 'tenant-token-label' } }, msg: 'fine' });
  });
});
