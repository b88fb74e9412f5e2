/**
 * The rest of API v1 on both providers: batches with mixed items, rewrap (payload bytes
 * untouched), data keys with and without plaintext, and the request limits.
 */
import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCiphertext } from '../../src/format/format.js';
import { LocalKeyProvider } from '../../src/kms/local.js';
import { AUTH, buildTestApp, describeProviders, type TestApp } from '../helpers/app.js';

describeProviders('API v1 on the %s provider', (kind) => {
  let t: TestApp;
  let otherKey: string;
  const post = (path: string, body: object) => request(t.app.server).post(path).set(AUTH).send(body);

  beforeAll(async () => {
    t = await buildTestApp({ provider: kind, env: { BATCH_MAX_ITEMS: '5' } });
    if (t.provider instanceof LocalKeyProvider) {
      const key = await t.provider.createKey();
      await t.provider.createAlias('alias/tenant-b', key.keyId);
    }
    otherKey = 'alias/tenant-b';
  });
  afterAll(async () => t?.close());

  it('encrypt batch: results in input order, a bad item fails alone', async () => {
    const response = await post('/v1/encrypt/batch', {
      items: [
        { plaintext: Buffer.from('one').toString('base64'), context: { n: '1' } },
        { plaintext: 'dHdv', keyId: 'alias/missing' },
        { plaintext: Buffer.from('three').toString('base64'), context: { n: '3' } },
      ],
    });
    expect(response.status).toBe(200);
    const [first, second, third] = response.body.results;
    expect(first.ciphertext).toMatch(/^ev1:/);
    expect(second).toEqual({ error: { code: 'KeyNotFound', status: 404, detail: expect.any(String) } });
    expect(third.ciphertext).toMatch(/^ev1:/);

    const decrypted = await post('/v1/decrypt/batch', {
      items: [{ ciphertext: third.ciphertext }, { ciphertext: 'ev1:garbage' }, { ciphertext: first.ciphertext, context: { n: '2' } }, { ciphertext: first.ciphertext }],
    });
    expect(decrypted.status).toBe(200);
    const results = decrypted.body.results;
    expect(Buffer.from(results[0].plaintext, 'base64').toString()).toBe('three');
    expect(results[1].error.status).toBe(422);
    expect(results[2].error.code).toBe('ContextMismatch');
    expect(Buffer.from(results[3].plaintext, 'base64').toString()).toBe('one');

    const event = t.auditEvents().find((e) => e.eventName === 'DecryptBatch')!;
    const items = (event.additionalEventData as { items: { index: number; errorCode?: string }[] }).items;
    expect(items.map((item) => item.errorCode ?? 'ok')).toEqual(['ok', 'MalformedCiphertext', 'ContextMismatch', 'ok']);
  });

  it('batch limits: more than BATCH_MAX_ITEMS or none at all is a 400', async () => {
    const six = Array.from({ length: 6 }, () => ({ plaintext: 'aGk=' }));
    expect((await post('/v1/encrypt/batch', { items: six })).status).toBe(400);
    expect((await post('/v1/encrypt/batch', { items: [] })).status).toBe(400);
    // The envelope of the request itself is still validated whole.
    for (const body of [{ items: { plaintext: 'aGk=' } }, { items: [{ plaintext: 'aGk=' }], extra: 1 }, {}]) {
      const response = await post('/v1/encrypt/batch', body);
      expect(response.status).toBe(400);
      expect(response.body.code).toBe('InvalidRequest');
    }
  });

  it('encrypt batch: a malformed item gets its own 400 in results, the others are served', async () => {
    const response = await post('/v1/encrypt/batch', {
      items: [
        { plaintext: Buffer.from('one').toString('base64') },
        { plaintext: 'not base64!' },
        { plaintext: 'aGk=', keyid: 'alias/typo' },
        { plaintext: 'aGk=', context: { tenant: 7 } },
        42,
      ],
    });
    expect(response.status).toBe(200);
    const [good, badBase64, unknownField, badContext, notAnObject] = response.body.results;
    expect(good.ciphertext).toMatch(/^ev1:/);
    expect(badBase64).toEqual({ error: { code: 'InvalidRequest', status: 400, detail: expect.stringMatching(/^item\/plaintext must match pattern/) } });
    expect(unknownField).toEqual({ error: { code: 'InvalidRequest', status: 400, detail: 'item must NOT have additional properties' } });
    expect(badContext).toEqual({ error: { code: 'InvalidRequest', status: 400, detail: 'item/context/tenant must be string' } });
    expect(notAnObject).toEqual({ error: { code: 'InvalidRequest', status: 400, detail: 'item must be object' } });
    // No detail quotes what the caller sent.
    expect(JSON.stringify(response.body)).not.toContain('not base64!');

    const event = t.auditEvents().findLast((e) => e.eventName === 'EncryptBatch')!;
    const items = (event.additionalEventData as { items: { status: number; errorCode?: string }[] }).items;
    expect(items.map((item) => `${item.status} ${item.errorCode ?? ''}`.trim())).toEqual([
      '200',
      '400 InvalidRequest',
      '400 InvalidRequest',
      '400 InvalidRequest',
      '400 InvalidRequest',
    ]);
  });

  it('decrypt batch: a malformed item gets its own 400 in results, the others are served', async () => {
    const { body } = await post('/v1/encrypt', { plaintext: Buffer.from('kept').toString('base64'), context: { tenant: 'a' } });
    const response = await post('/v1/decrypt/batch', {
      items: [{ ciphertext: 'ev1:%%%' }, { ciphertext: body.ciphertext, aad: '***' }, { ciphertext: body.ciphertext, context: { tenant: 'a' } }, { context: {} }],
    });
    expect(response.status).toBe(200);
    const [badCiphertext, badAad, good, missing] = response.body.results;
    expect(badCiphertext.error).toMatchObject({ code: 'InvalidRequest', status: 400 });
    expect(badAad.error).toMatchObject({ code: 'InvalidRequest', status: 400, detail: expect.stringMatching(/^item\/aad /) });
    expect(Buffer.from(good.plaintext, 'base64').toString()).toBe('kept');
    expect(missing.error).toMatchObject({ code: 'InvalidRequest', status: 400, detail: "item must have required property 'ciphertext'" });
  });

  it('rewrap: the rewrapped ciphertext decrypts, under the new key, with the payload bytes unchanged', async () => {
    const plaintext = randomBytes(300);
    const aad = Buffer.from('row-9').toString('base64');
    const encrypted = await post('/v1/encrypt', { plaintext: plaintext.toString('base64'), context: { tenant: 'a' }, aad });
    const rewrapped = await post('/v1/rewrap', { ciphertext: encrypted.body.ciphertext, keyId: otherKey });
    expect(rewrapped.status).toBe(200);
    expect(rewrapped.body.keyId).not.toBe(encrypted.body.keyId);

    const before = parseCiphertext(encrypted.body.ciphertext);
    const after = parseCiphertext(rewrapped.body.ciphertext);
    expect(after.keyArn).toBe(rewrapped.body.keyId);
    expect(after.wrappedKey.equals(before.wrappedKey)).toBe(false);
    // Everything after the key block (context, message id, commitment, IV, body, tag) is byte-identical.
    expect(after.sealedPart.equals(before.sealedPart)).toBe(true);

    const decrypted = await post('/v1/decrypt', { ciphertext: rewrapped.body.ciphertext, aad });
    expect(decrypted.status).toBe(200);
    expect(Buffer.from(decrypted.body.plaintext, 'base64').equals(plaintext)).toBe(true);
    expect(decrypted.body.keyId).toBe(rewrapped.body.keyId);
  });

  it('rewrap refuses a context that differs from the stored one, and a tampered ciphertext', async () => {
    const encrypted = await post('/v1/encrypt', { plaintext: 'aGk=', context: { tenant: 'a' } });
    expect((await post('/v1/rewrap', { ciphertext: encrypted.body.ciphertext, context: { tenant: 'b' } })).status).toBe(422);
    // Flip a byte in the authenticated tail of the KMS blob (the wrapped key).
    const tampered = Buffer.from(encrypted.body.ciphertext.slice(4), 'base64url');
    const arnLength = tampered.readUInt16BE(2);
    const wrappedLength = tampered.readUInt16BE(4 + arnLength);
    tampered[4 + arnLength + 2 + wrappedLength - 2]! ^= 1;
    expect((await post('/v1/rewrap', { ciphertext: `ev1:${tampered.toString('base64url')}` })).status).toBe(422);
  });

  it('datakey: wrapped only by default; with plaintext when asked; the wrapped key is a real KMS blob', async () => {
    const wrappedOnly = await post('/v1/datakey', { context: { tenant: 'a' } });
    expect(wrappedOnly.status).toBe(200);
    expect(wrappedOnly.body.plaintextKey).toBeUndefined();
    const withPlaintext = await post('/v1/datakey', { context: { tenant: 'a' }, includePlaintext: true });
    expect(withPlaintext.status).toBe(200);
    const key = Buffer.from(withPlaintext.body.plaintextKey, 'base64');
    expect(key).toHaveLength(32);
    const unwrapped = await t.provider.decryptDataKey(Buffer.from(withPlaintext.body.wrappedKey, 'base64'), withPlaintext.body.keyId, { tenant: 'a' });
    expect(unwrapped.plaintextKey.equals(key)).toBe(true);
    const event = t.auditEvents().filter((e) => e.eventName === 'GenerateDataKey').at(-1)!;
    expect(JSON.stringify(event)).not.toContain(withPlaintext.body.plaintextKey);
  });
});

describe('request limits', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ env: { BODY_LIMIT_BYTES: '4096', RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000' } });
  });
  afterAll(async () => t?.close());

  it('413 for a body over BODY_LIMIT_BYTES', async () => {
    const response = await request(t.app.server).post('/v1/encrypt').set(AUTH).send({ plaintext: Buffer.alloc(4096).toString('base64') });
    expect(response.status).toBe(413);
    expect(response.body.code).toBe('PayloadTooLarge');
  });

  it('429 with Retry-After once a principal exceeds its rate', async () => {
    const statuses: number[] = [];
    let last: request.Response | undefined;
    for (let i = 0; i < 5; i++) {
      last = await request(t.app.server).post('/v1/encrypt').set(AUTH).send({ plaintext: 'aGk=' });
      statuses.push(last.status);
    }
    expect(statuses.filter((status) => status === 429).length).toBeGreaterThanOrEqual(2);
    expect(last!.status).toBe(429);
    expect(Number(last!.headers['retry-after'])).toBeGreaterThan(0);
    expect(last!.body.code).toBe('RateLimited');
  });
});
