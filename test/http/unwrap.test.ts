/**
 * POST /v1/unwrap: the data key of a client-side ciphertext, under its own grant
 * (`datakey:unwrap`), judged on the stored key and context like a decrypt, audited with the
 * same data key id as the GenerateDataKey that issued it, and charged to the KMS budget.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTH, buildTestApp, type TestApp } from '../helpers/app.js';

const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const ISSUER = bearer('unwrap-test-issuer-token');
const UNWRAPPER = bearer('unwrap-test-unwrapper-token');
const CONTEXT = { tenant: 'acme' };

function policyFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'unwrap-policy-'));
  const path = join(dir, 'policy.yaml');
  writeFileSync(
    path,
    [
      'version: 1',
      'authentication:',
      '  apiKeys:',
      `    - { name: issuer, sha256: "${sha256('unwrap-test-issuer-token')}" }`,
      `    - { name: unwrapper, sha256: "${sha256('unwrap-test-unwrapper-token')}" }`,
      'rules:',
      '  - id: issuer-datakeys',
      '    principals: [issuer]',
      '    operations: [datakey, "datakey:plaintext", decrypt]',
      '    keys: ["*"]',
      '    context: { required: [tenant], allowOthers: false }',
      '  - id: unwrapper-acme',
      '    principals: [unwrapper]',
      '    operations: ["datakey:unwrap"]',
      '    keys: ["*"]',
      '    context: { equals: { tenant: acme } }',
      '',
    ].join('\n'),
  );
  return path;
}

describe('POST /v1/unwrap (dev token)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(async () => t?.close());
  const post = (path: string, body: object, auth = AUTH) => request(t.app.server).post(path).set(auth).send(body);

  it('gives back the data key /v1/datakey issued, audited with the same data key id and a KMS request id', async () => {
    const issued = await post('/v1/datakey', { context: CONTEXT, includePlaintext: true });
    expect(issued.status).toBe(200);
    const unwrapped = await post('/v1/unwrap', { keyId: issued.body.keyId, wrappedKey: issued.body.wrappedKey, context: CONTEXT });
    expect(unwrapped.status).toBe(200);
    expect(unwrapped.body).toEqual({ keyId: issued.body.keyId, plaintextKey: issued.body.plaintextKey });
    expect(unwrapped.headers['cache-control']).toContain('no-store');

    const events = t.auditEvents();
    const issue = events.filter((e) => e.eventName === 'GenerateDataKey').at(-1)!;
    const unwrap = events.filter((e) => e.eventName === 'UnwrapDataKey').at(-1)!;
    expect(unwrap).toMatchObject({ httpStatus: 200, requestParameters: { keyId: issued.body.keyId, encryptionContext: CONTEXT } });
    type KeyFacts = { dataKeyId: string; cacheHit: boolean; kmsRequestIds: string[] };
    const unwrapFacts = unwrap.additionalEventData as KeyFacts;
    expect(unwrapFacts.dataKeyId).toBe((issue.additionalEventData as KeyFacts).dataKeyId);
    expect(unwrapFacts.cacheHit).toBe(false);
    expect(unwrapFacts.kmsRequestIds.length).toBeGreaterThan(0);
    expect(JSON.stringify(unwrap)).not.toContain(issued.body.plaintextKey);
  });

  it('422 DataKeyUnwrapFailed under another context or with a tampered wrapped key; 400 for a bad body', async () => {
    const issued = await post('/v1/datakey', { context: CONTEXT });
    const wrong = await post('/v1/unwrap', { keyId: issued.body.keyId, wrappedKey: issued.body.wrappedKey, context: { tenant: 'other' } });
    expect(wrong.status).toBe(422);
    expect(wrong.body.code).toBe('DataKeyUnwrapFailed');
    const bytes = Buffer.from(issued.body.wrappedKey, 'base64');
    bytes[bytes.length - 1]! ^= 1;
    const tampered = await post('/v1/unwrap', { keyId: issued.body.keyId, wrappedKey: bytes.toString('base64'), context: CONTEXT });
    expect(tampered.status).toBe(422);
    expect((await post('/v1/unwrap', { wrappedKey: issued.body.wrappedKey })).status).toBe(400);
    expect((await post('/v1/unwrap', { keyId: issued.body.keyId, wrappedKey: 'not base64!' })).status).toBe(400);
  });
});

describe('POST /v1/unwrap under a policy', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ policyFile: policyFile() });
  });
  afterAll(async () => t?.close());
  const post = (path: string, body: object, auth: Record<string, string>) => request(t.app.server).post(path).set(auth).send(body);

  it('needs datakey:unwrap: decrypt and datakey:plaintext do not imply it; the 403 is audited with the grant it lacked', async () => {
    const issued = await post('/v1/datakey', { context: CONTEXT, includePlaintext: true }, ISSUER);
    expect(issued.status).toBe(200);
    const denied = await post('/v1/unwrap', { keyId: issued.body.keyId, wrappedKey: issued.body.wrappedKey, context: CONTEXT }, ISSUER);
    expect(denied.status).toBe(403);
    expect(denied.body.code).toBe('AccessDenied');
    const event = t.auditEvents().filter((e) => e.eventName === 'UnwrapDataKey').at(-1)!;
    expect(event.httpStatus).toBe(403);
    expect(JSON.stringify(event)).toContain('datakey:unwrap');

    const allowed = await post('/v1/unwrap', { keyId: issued.body.keyId, wrappedKey: issued.body.wrappedKey, context: CONTEXT }, UNWRAPPER);
    expect(allowed.status).toBe(200);
    expect(allowed.body.plaintextKey).toBe(issued.body.plaintextKey);
  });

  it('judged on the context given: the unwrapper\'s grant is for tenant acme only', async () => {
    const issued = await post('/v1/datakey', { context: { tenant: 'globex' } }, ISSUER);
    const denied = await post('/v1/unwrap', { keyId: issued.body.keyId, wrappedKey: issued.body.wrappedKey, context: { tenant: 'globex' } }, UNWRAPPER);
    expect(denied.status).toBe(403);
  });
});
