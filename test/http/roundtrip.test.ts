/**
 * Encrypt/decrypt over HTTP, the same suite on both providers: the embedded local provider,
 * and the AWS SDK provider against a real local-kms process over the KMS wire protocol.
 */
import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTH, buildTestApp, describeProviders, type TestApp } from '../helpers/app.js';

const SIZES = [0, 1, 1024, 1024 * 1024];

describeProviders('round trips on the %s provider', (kind) => {
  let t: TestApp;
  beforeAll(async () => {
    // Room for the 1 MiB case in base64 JSON (the default JSON_BODY_LIMIT_BYTES is 1 MiB).
    t = await buildTestApp({ provider: kind, env: { JSON_BODY_LIMIT_BYTES: String(2 * 1024 * 1024) } });
  });
  afterAll(async () => t?.close());

  for (const size of SIZES) {
    for (const withContext of [false, true]) {
      for (const withAad of [false, true]) {
        it(`${size} B, context ${withContext ? 'yes' : 'no'}, aad ${withAad ? 'yes' : 'no'}`, async () => {
          const plaintext = randomBytes(size);
          const context = withContext ? { tenant: 'a', purpose: 'roundtrip' } : undefined;
          const aad = withAad ? randomBytes(16).toString('base64') : undefined;
          const encrypted = await request(t.app.server)
            .post('/v1/encrypt')
            .set(AUTH)
            .send({ plaintext: plaintext.toString('base64'), ...(context ? { context } : {}), ...(aad ? { aad } : {}) });
          expect(encrypted.status).toBe(200);
          expect(encrypted.body.ciphertext).toMatch(/^ev1:[A-Za-z0-9_-]+$/);
          expect(encrypted.body.keyId).toMatch(/^arn:aws:kms:/);
          // The ciphertext never contains the plaintext.
          if (size >= 16) expect(Buffer.from(encrypted.body.ciphertext.slice(4), 'base64url').includes(plaintext.subarray(0, 16))).toBe(false);

          const decrypted = await request(t.app.server)
            .post('/v1/decrypt')
            .set(AUTH)
            .send({ ciphertext: encrypted.body.ciphertext, ...(aad ? { aad } : {}) });
          expect(decrypted.status).toBe(200);
          expect(Buffer.from(decrypted.body.plaintext, 'base64').equals(plaintext)).toBe(true);
          expect(decrypted.body.keyId).toBe(encrypted.body.keyId);
          expect(decrypted.body.context).toEqual(context ?? {});
        });
      }
    }
  }

  it('decrypt checks a given context against the stored one', async () => {
    const { body } = await request(t.app.server).post('/v1/encrypt').set(AUTH).send({ plaintext: 'aGk=', context: { tenant: 'a' } });
    const same = await request(t.app.server).post('/v1/decrypt').set(AUTH).send({ ciphertext: body.ciphertext, context: { tenant: 'a' } });
    expect(same.status).toBe(200);
    const wrong = await request(t.app.server).post('/v1/decrypt').set(AUTH).send({ ciphertext: body.ciphertext, context: { tenant: 'b' } });
    expect(wrong.status).toBe(422);
    expect(wrong.body.code).toBe('ContextMismatch');
  });

  it('encrypts under a named alias and reports its ARN', async () => {
    const aliased = await request(t.app.server).post('/v1/encrypt').set(AUTH).send({ plaintext: 'aGk=', keyId: 'alias/default' });
    expect(aliased.status).toBe(200);
    const unknown = await request(t.app.server).post('/v1/encrypt').set(AUTH).send({ plaintext: 'aGk=', keyId: 'alias/does-not-exist' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('KeyNotFound');
  });
});
