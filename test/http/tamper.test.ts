/**
 * Hostile ciphertexts and malformed requests over HTTP, on both providers: tampering with any
 * part of a ciphertext, wrong context or aad, truncation and garbage give 422 (400 for a
 * malformed request), never a 500, and never any plaintext.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTH, buildTestApp, describeProviders, type TestApp } from '../helpers/app.js';

const PLAINTEXT = Buffer.from('the secret payload').toString('base64');
const AAD = Buffer.from('row-1').toString('base64');

/** Offsets into the binary envelope, found by parsing its length fields. */
function regionOffsets(bytes: Buffer): Record<string, number> {
  const arnLength = bytes.readUInt16BE(2);
  const wrappedAt = 4 + arnLength;
  const wrappedLength = bytes.readUInt16BE(wrappedAt);
  const contextAt = wrappedAt + 2 + wrappedLength;
  let at = contextAt + 2;
  for (let i = 0; i < bytes.readUInt16BE(contextAt); i++) {
    at += 2 + bytes.readUInt16BE(at);
    at += 2 + bytes.readUInt16BE(at);
  }
  return {
    'header version': 0,
    'header algorithm': 1,
    'key ARN': 4 + arnLength - 3,
    // The wrapped key is KMS's blob: its integrity is KMS's to check. local-kms ignores the key
    // id copy inside its blob when KeyId is passed (real KMS authenticates the whole blob), so
    // flip a byte of its authenticated tail; any substitution that still unwraps to the same
    // data key leaves the payload authentic (the key commitment binds the data key).
    'wrapped key': wrappedAt + 2 + wrappedLength - 2,
    'context': contextAt + 4,
    'message id': at + 5,
    'commitment': at + 32 + 5,
    'IV': at + 64 + 3,
    'body': at + 64 + 12 + 2,
    'tag': bytes.length - 1,
  };
}

describeProviders('hostile ciphertexts on the %s provider', (kind) => {
  let t: TestApp;
  let ciphertext: string;

  beforeAll(async () => {
    t = await buildTestApp({ provider: kind });
    const response = await request(t.app.server).post('/v1/encrypt').set(AUTH).send({ plaintext: PLAINTEXT, context: { tenant: 'a' }, aad: AAD });
    ciphertext = response.body.ciphertext;
  });
  afterAll(async () => t?.close());

  const decrypt = (body: object) => request(t.app.server).post('/v1/decrypt').set(AUTH).send(body);

  function expectRefused(response: request.Response, status = 422) {
    expect(response.status).toBe(status);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.stringify(response.body)).not.toContain(PLAINTEXT);
    expect(response.body.plaintext).toBeUndefined();
  }

  it('the untouched ciphertext decrypts (control)', async () => {
    expect((await decrypt({ ciphertext, aad: AAD })).status).toBe(200);
  });

  it('a changed prefix', async () => {
    expectRefused(await decrypt({ ciphertext: `ev2${ciphertext.slice(3)}`, aad: AAD }));
    expectRefused(await decrypt({ ciphertext: ciphertext.slice(4), aad: AAD }));
  });

  for (const region of ['header version', 'header algorithm', 'key ARN', 'wrapped key', 'context', 'message id', 'commitment', 'IV', 'body', 'tag']) {
    it(`a flipped byte in the ${region}`, async () => {
      const bytes = Buffer.from(ciphertext.slice(4), 'base64url');
      bytes[regionOffsets(bytes)[region]!]! ^= 0x04;
      const response = await decrypt({ ciphertext: `ev1:${bytes.toString('base64url')}`, aad: AAD });
      expectRefused(response);
    });
  }

  it('a wrong context', async () => {
    const response = await decrypt({ ciphertext, aad: AAD, context: { tenant: 'b' } });
    expectRefused(response);
    expect(response.body.code).toBe('ContextMismatch');
  });

  it('a wrong or missing aad', async () => {
    expectRefused(await decrypt({ ciphertext, aad: Buffer.from('row-2').toString('base64') }));
    const missing = await decrypt({ ciphertext });
    expectRefused(missing);
    expect(missing.body.code).toBe('AuthenticationFailed');
  });

  it('truncated ciphertexts at every length class', async () => {
    for (const length of [5, 10, 40, 100, ciphertext.length - 30, ciphertext.length - 1]) {
      expectRefused(await decrypt({ ciphertext: ciphertext.slice(0, length), aad: AAD }));
    }
  });

  it('garbage', async () => {
    expectRefused(await decrypt({ ciphertext: 'ev1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }));
    expectRefused(await decrypt({ ciphertext: `ev1:${Buffer.alloc(400, 0xff).toString('base64url')}` }));
    expectRefused(await decrypt({ ciphertext: 'hello' }));
  });
});

describe('malformed requests get 400 with a problem body', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(async () => t?.close());

  const cases: [string, unknown][] = [
    ['invalid base64 plaintext', { plaintext: 'not base64!' }],
    ['missing plaintext', {}],
    ['an unknown field (a typo must not fall back to the default key)', { plaintext: 'aGk=', keyid: 'alias/x' }],
    ['a non-string context value', { plaintext: 'aGk=', context: { tenant: 1 } }],
    ['an empty context key', { plaintext: 'aGk=', context: { '': 'x' } }],
    ['a plaintext of the wrong type', { plaintext: 42 }],
    ['an array body', [1, 2]],
  ];
  for (const [name, body] of cases) {
    it(name, async () => {
      const response = await request(t.app.server).post('/v1/encrypt').set(AUTH).send(body as object);
      expect(response.status).toBe(400);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.body).toMatchObject({ status: 400, type: expect.any(String), title: 'Bad Request', code: expect.any(String), requestId: expect.any(String) });
    });
  }

  it('non-JSON', async () => {
    const response = await request(t.app.server).post('/v1/encrypt').set(AUTH).set('content-type', 'application/json').send('{"plaintext":');
    expect(response.status).toBe(400);
    expect(response.body.code).toBe('MalformedJson');
  });

  it('a __proto__ key is refused, not merged', async () => {
    const response = await request(t.app.server).post('/v1/encrypt').set(AUTH).set('content-type', 'application/json').send('{"plaintext":"aGk=","context":{"__proto__":{"x":"1"}}}');
    expect(response.status).toBe(400);
    // Well-formed JSON: the answer must name the refused key, not only call the body malformed.
    expect(response.body.detail).toContain('__proto__');
  });
});
