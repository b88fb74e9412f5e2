import { createHash } from 'node:crypto';
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { GENESIS_HASH } from '../../src/audit/chain.js';
import { dataKeyIdOf as dataKeyId } from '../../src/keys/data-key-cache.js';
import { verifyAuditLog } from '../../src/verifier/verify.js';
import { AUTH, buildTestApp } from '../helpers/app.js';
import { parseLines, readLines, sampleInput, tempDir, writeEvents } from './helpers.js';

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

describe('AuditLog writes', () => {
  it('writes one parseable JSON line per event, with the chain fields and nothing else mixed in', async () => {
    const path = join(tempDir(), 'audit.log');
    await writeEvents(path, 3);

    const lines = readLines(path);
    expect(lines).toHaveLength(3);
    expect(readFileSync(path, 'utf8').endsWith('\n')).toBe(true);
    const events = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    events.forEach((event, index) => {
      expect(Object.keys(event)[0]).toBe('eventVersion');
      expect(event).toMatchObject({
        eventVersion: '1.0',
        eventSource: 'envelope-service',
        eventType: 'ApiCall',
        eventName: 'Encrypt',
        requestID: `req-${index}`,
        sequence: index,
      });
      expect(event.eventID).toMatch(/^[0-9a-f-]{36}$/);
      expect(new Date(event.eventTime as string).toISOString()).toBe(event.eventTime);
      // pino's own fields must not leak into the record
      expect(event).not.toHaveProperty('level');
      expect(event).not.toHaveProperty('time');
      expect(event).not.toHaveProperty('msg');
      expect(event).not.toHaveProperty('pid');
      expect(event).not.toHaveProperty('hostname');
    });
    expect(events[0]?.previousHash).toBe(GENESIS_HASH);
    expect(events[1]?.previousHash).toBe(sha256(lines[0] as string));
    expect(events[2]?.previousHash).toBe(sha256(lines[1] as string));
  });

  it('creates the file 0600 and its missing parent directories', async () => {
    const path = join(tempDir(), 'nested', 'deeper', 'audit.log');
    await writeEvents(path, 1);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('keeps the record CloudTrail-shaped: key order, errors, batches', async () => {
    const path = join(tempDir(), 'audit.log');
    const log = AuditLog.open({ destination: path });
    await log.write(
      sampleInput({
        eventName: 'EncryptBatch',
        httpStatus: 200,
        requestParameters: { items: 2 },
        responseElements: { items: 2, failedItems: 1 },
        additionalEventData: {
          kmsRequestIds: ['kms-1'],
          items: [
            { index: 0, keyId: 'alias/a', dataKeyId: dataKeyId(Buffer.from('wrapped')), cacheHit: true, kmsRequestIds: ['kms-1'] },
            { index: 1, keyId: 'alias/b', kmsRequestIds: [], decision: 'deny', denyReason: 'no rule', errorCode: 'AccessDenied' },
          ],
        },
      }),
    );
    await log.write(sampleInput({ httpStatus: 403, errorCode: 'AccessDenied', errorMessage: 'denied', responseElements: null }));
    await log.close();

    const [batch, denied] = parseLines(path);
    expect(Object.keys(batch ?? {})).toEqual([
      'eventVersion', 'eventTime', 'eventID', 'eventSource', 'eventName', 'eventType', 'userIdentity',
      'sourceIPAddress', 'userAgent', 'requestID', 'httpStatus', 'requestParameters', 'responseElements',
      'additionalEventData', 'sequence', 'previousHash',
    ]);
    expect(batch?.additionalEventData).toMatchObject({ items: [{ index: 0, cacheHit: true }, { index: 1, errorCode: 'AccessDenied' }] });
    expect(denied).toMatchObject({ httpStatus: 403, errorCode: 'AccessDenied', errorMessage: 'denied', responseElements: null });
  });

  it('bounds attacker-controlled strings', async () => {
    const path = join(tempDir(), 'audit.log');
    const log = AuditLog.open({ destination: path });
    await log.write(sampleInput({ userAgent: 'x'.repeat(10_000), errorMessage: 'y'.repeat(10_000) }));
    await log.close();
    const [event] = parseLines(path);
    expect((event?.userAgent as string).length).toBeLessThan(600);
    expect((event?.errorMessage as string).length).toBeLessThan(1100);
  });

  it('the service counts each event it writes in audit_events_total, failed authentications included', async () => {
    const t = await buildTestApp();
    try {
      expect((await request(t.app.server).post('/v1/encrypt').set(AUTH).send({ plaintext: 'aGk=' })).status).toBe(200);
      expect((await request(t.app.server).post('/v1/encrypt').send({ plaintext: 'aGk=' })).status).toBe(401);
      expect(t.auditEvents()).toHaveLength(2);
      expect(await t.metrics.registry.getSingleMetricAsString('audit_events_total')).toMatch(/^audit_events_total 2$/m);
    } finally {
      await t.close();
    }
  });

  it('reports the chain head to anchor elsewhere', async () => {
    const path = join(tempDir(), 'audit.log');
    const log = AuditLog.open({ destination: path });
    expect(log.chainHead()).toBeNull();
    await log.write(sampleInput());
    await log.write(sampleInput());
    const lines = readLines(path);
    expect(log.chainHead()).toEqual({ sequence: 1, hash: sha256(lines[1] as string) });
    await log.close();
  });
});

describe('redaction backstop', () => {
  it('censors secret-named stray fields the types did not stop, and keeps user data alone', async () => {
    const path = join(tempDir(), 'audit.log');
    const log = AuditLog.open({ destination: path });
    const input = sampleInput();
    // As if a request body had been spread into the event by mistake.
    Object.assign(input.requestParameters ?? {}, { plaintext: 'SECRET-PLAINTEXT', aad: 'SECRET-AAD' });
    Object.assign(input.userIdentity, { token: 'SECRET-TOKEN' });
    Object.assign(input.additionalEventData, {
      wrappedKey: 'SECRET-WRAPPED',
      items: [{ index: 0, kmsRequestIds: [], plaintextKey: 'SECRET-KEY' }],
    });
    Object.assign(input, { authorization: 'Bearer SECRET-BEARER' });
    input.requestParameters = { ...input.requestParameters, encryptionContext: { token: 'not-a-secret' } };
    await log.write(input);
    await log.close();

    const text = readFileSync(path, 'utf8');
    expect(text).not.toContain('SECRET');
    const [event] = parseLines(path);
    expect(event?.requestParameters).toMatchObject({ plaintext: '[REDACTED]', aad: '[REDACTED]', encryptionContext: { token: 'not-a-secret' } });
    expect(event?.userIdentity).toMatchObject({ token: '[REDACTED]' });
    expect(event?.additionalEventData).toMatchObject({ wrappedKey: '[REDACTED]', items: [{ plaintextKey: '[REDACTED]' }] });
    // Unknown top-level properties are not copied at all.
    expect(event).not.toHaveProperty('authorization');
  });
});

describe('hash chain across restarts', () => {
  it('continues sequence and hash after close and reopen', async () => {
    const path = join(tempDir(), 'audit.log');
    await writeEvents(path, 2);
    await writeEvents(path, 2);

    const lines = readLines(path);
    const events = lines.map((line) => JSON.parse(line) as { sequence: number; previousHash: string });
    expect(events.map((event) => event.sequence)).toEqual([0, 1, 2, 3]);
    expect(events[2]?.previousHash).toBe(sha256(lines[1] as string));
    await expect(verifyAuditLog(path)).resolves.toMatchObject({ ok: true, events: 4 });
  });

  it('continues after a last line much longer than the first read window', async () => {
    const path = join(tempDir(), 'audit.log');
    await writeEvents(path, 1);
    const log = AuditLog.open({ destination: path });
    await log.write(sampleInput({ userAgent: null, errorMessage: 'z'.repeat(1000) }));
    await log.close();
    const reopened = AuditLog.open({ destination: path, tailWindowBytes: 64 });
    await reopened.write(sampleInput());
    await reopened.close();
    expect(parseLines(path).map((event) => event.sequence)).toEqual([0, 1, 2]);
    await expect(verifyAuditLog(path)).resolves.toMatchObject({ ok: true, events: 3, resumptions: [] });
  });

  it('starts a new segment with AuditChainResumed after a partial last line (crash mid-write)', async () => {
    const path = join(tempDir(), 'audit.log');
    await writeEvents(path, 3);
    const partial = '{"eventVersion":"1.0","eventTime":"2026-';
    appendFileSync(path, partial);

    const log = AuditLog.open({ destination: path });
    await log.write(sampleInput({ requestID: 'after-crash' }));
    await log.close();

    const lines = readLines(path);
    expect(lines).toHaveLength(6);
    expect(lines[3]).toBe(partial); // left as evidence, terminated by a newline
    const resumed = JSON.parse(lines[4] as string) as Record<string, unknown>;
    expect(resumed).toMatchObject({
      eventName: 'AuditChainResumed',
      eventType: 'ServiceEvent',
      sequence: 3,
      previousHash: sha256(partial),
      serviceEventDetails: {
        reason: 'partial-last-line',
        lastLineHash: sha256(partial),
        lastLineBytes: partial.length,
        lastValidSequence: 2,
      },
    });
    expect(JSON.parse(lines[5] as string)).toMatchObject({ requestID: 'after-crash', sequence: 4, previousHash: sha256(lines[4] as string) });

    const result = await verifyAuditLog(path);
    expect(result).toMatchObject({ ok: true, events: 5, resumptions: [{ line: 5, damagedLine: 4, reason: 'partial-last-line' }] });
  });

  it('resumes (never silently continues) after a complete but invalid last line', async () => {
    const path = join(tempDir(), 'audit.log');
    await writeEvents(path, 2);
    appendFileSync(path, '{"hello":"world"}\n');
    await writeEvents(path, 1);

    const events = parseLines(path);
    expect(events[3]).toMatchObject({
      eventName: 'AuditChainResumed',
      sequence: 2,
      serviceEventDetails: { reason: 'invalid-last-event', lastValidSequence: 1 },
    });
    expect(events[4]).toMatchObject({ sequence: 3 });
    await expect(verifyAuditLog(path)).resolves.toMatchObject({ ok: true, resumptions: [{ line: 4, damagedLine: 3 }] });
  });

  it('resumes after a complete JSON event missing only its newline, keeping it in the chain', async () => {
    const path = join(tempDir(), 'audit.log');
    await writeEvents(path, 2);
    const text = readFileSync(path, 'utf8');
    writeFileSync(path, text.slice(0, -1));
    await writeEvents(path, 1);

    const events = parseLines(path);
    expect(events.map((event) => [event.eventName, event.sequence])).toEqual([
      ['Encrypt', 0],
      ['Encrypt', 1],
      ['AuditChainResumed', 2],
      ['Encrypt', 3],
    ]);
    await expect(verifyAuditLog(path)).resolves.toMatchObject({
      ok: true,
      events: 4,
      resumptions: [{ line: 3, damagedLine: null, reason: 'partial-last-line' }],
    });
  });

  it('starts at sequence 0 with the genesis hash in an empty existing file', async () => {
    const path = join(tempDir(), 'audit.log');
    writeFileSync(path, '');
    await writeEvents(path, 1);
    expect(parseLines(path)[0]).toMatchObject({ sequence: 0, previousHash: GENESIS_HASH });
  });
});
