/**
 * The binary API (/v1/encrypt/binary, /v1/decrypt/binary) on both providers: raw bytes in and
 * out, interchangeable with the JSON API's ciphertexts, the same refusals (policy, tampering,
 * wrong aad or context), strict header parsing, and one audit event per request.
 */
import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTEXT_HEADER_PATTERN, formatContextHeader, headerSafe, parseContextHeader } from '../../src/http/schemas/binary-headers.js';
import { LocalKeyProvider } from '../../src/kms/local.js';
import { AUTH, buildTestApp, describeProviders, type TestApp } from '../helpers/app.js';

const OCTET = 'application/octet-stream';
const POLICY = new URL('../../examples/policy.yaml', import.meta.url).pathname;

/** supertest gives a binary body as a Buffer only when told to collect one (superagent's parser signature). */
const binaryParser = ((res: NodeJS.ReadableStream, callback: (error: Error | null, body: Buffer) => void): void => {
  const chunks: Buffer[] = [];
  res.on('data', (chunk: Buffer) => chunks.push(chunk));
  res.on('end', () => callback(null, Buffer.concat(chunks)));
}) as never;

describeProviders('binary API on the %s provider', (kind) => {
  let t: TestApp;

  beforeAll(async () => {
    t = await buildTestApp({ provider: kind });
  });
  afterAll(async () => t?.close());

  const encrypt = (body: Buffer, headers: Record<string, string> = {}) =>
    request(t.app.server).post('/v1/encrypt/binary').set(AUTH).set('content-type', OCTET).set(headers).buffer(true).parse(binaryParser).send(body);
  const decrypt = (body: Buffer, headers: Record<string, string> = {}) =>
    request(t.app.server).post('/v1/decrypt/binary').set(AUTH).set('content-type', OCTET).set(headers).buffer(true).parse(binaryParser).send(body);

  it('round-trips raw bytes with context and aad; the key and stored context come back in headers', async () => {
    const plaintext = randomBytes(70_000);
    const headers = { 'x-envelope-context': 'tenant=acme&purpose=billing%20run', 'x-envelope-aad': Buffer.from('row-7').toString('base64') };
    const encrypted = await encrypt(plaintext, headers);
    expect(encrypted.status).toBe(200);
    expect(encrypted.headers['content-type']).toBe(OCTET);
    expect(encrypted.headers['x-envelope-key-id']).toMatch(/^arn:aws:kms:/);
    const envelope = encrypted.body as Buffer;
    expect(envelope.length).toBeGreaterThan(plaintext.length);
    expect(envelope.includes(plaintext.subarray(0, 64))).toBe(false);

    const decrypted = await decrypt(envelope, { 'x-envelope-aad': headers['x-envelope-aad'] });
    expect(decrypted.status).toBe(200);
    expect(decrypted.headers['content-type']).toBe(OCTET);
    expect(Buffer.compare(decrypted.body as Buffer, plaintext)).toBe(0);
    expect(decrypted.headers['x-envelope-key-id']).toBe(encrypted.headers['x-envelope-key-id']);
    expect(parseContextHeader(decrypted.headers['x-envelope-context'])).toEqual({ tenant: 'acme', purpose: 'billing run' });
  });

  it('is the same envelope as the JSON API: each side opens the other\'s ciphertexts', async () => {
    const plaintext = Buffer.from('interchangeable');
    const binary = (await encrypt(plaintext, { 'x-envelope-context': 'a=1' })).body as Buffer;
    const viaJson = await request(t.app.server).post('/v1/decrypt').set(AUTH).send({ ciphertext: `ev1:${binary.toString('base64url')}`, context: { a: '1' } });
    expect(viaJson.status).toBe(200);
    expect(viaJson.body.plaintext).toBe(plaintext.toString('base64'));

    const json = await request(t.app.server).post('/v1/encrypt').set(AUTH).send({ plaintext: plaintext.toString('base64') });
    const viaBinary = await decrypt(Buffer.from((json.body.ciphertext as string).slice(4), 'base64url'));
    expect(viaBinary.status).toBe(200);
    expect((viaBinary.body as Buffer).toString()).toBe('interchangeable');
    expect(viaBinary.headers['x-envelope-context']).toBe('');
  });

  it('an empty body is an empty plaintext', async () => {
    const encrypted = await encrypt(Buffer.alloc(0));
    expect(encrypted.status).toBe(200);
    const decrypted = await decrypt(encrypted.body as Buffer);
    expect(decrypted.status).toBe(200);
    expect((decrypted.body as Buffer).length).toBe(0);
  });

  it('no body at all (no Content-Type) is a 400, not an empty plaintext', async () => {
    for (const path of ['/v1/encrypt/binary', '/v1/decrypt/binary']) {
      const response = await request(t.app.server).post(path).set(AUTH);
      expect(response.status, path).toBe(400);
      expect(response.body.detail).toContain('application/octet-stream');
    }
  });

  it('decrypt/binary also takes the text form (ev1:), as pasted in Swagger UI, trailing newline and all', async () => {
    const json = await request(t.app.server).post('/v1/encrypt').set(AUTH).send({ plaintext: Buffer.from('pasted').toString('base64'), context: { a: '1' } });
    for (const text of [json.body.ciphertext as string, `${json.body.ciphertext}\n`]) {
      const decrypted = await decrypt(Buffer.from(text), { 'x-envelope-context': 'a=1' });
      expect(decrypted.status).toBe(200);
      expect((decrypted.body as Buffer).toString()).toBe('pasted');
      expect(decrypted.headers['x-envelope-context']).toBe('a=1');
    }
  });

  it('tampering, a wrong aad and a wrong expected context are 422 with no plaintext', async () => {
    const plaintext = Buffer.from('secret binary payload');
    const envelope = (await encrypt(plaintext, { 'x-envelope-aad': 'cm93' , 'x-envelope-context': 't=a' })).body as Buffer;
    const flipped = Buffer.from(envelope);
    flipped[flipped.length - 20]! ^= 1;
    for (const [body, headers, code] of [
      [flipped, { 'x-envelope-aad': 'cm93' }, 'AuthenticationFailed'],
      [envelope, { 'x-envelope-aad': 'cm94' }, 'AuthenticationFailed'],
      [envelope, {}, 'AuthenticationFailed'],
      [envelope, { 'x-envelope-aad': 'cm93', 'x-envelope-context': 't=b' }, 'ContextMismatch'],
      [envelope.subarray(0, 30), {}, 'MalformedCiphertext'],
      [Buffer.from('ev1:not-binary'), {}, 'MalformedCiphertext'],
      [Buffer.from('ev9:AAAA'), {}, 'UnsupportedFormat'],
    ] as const) {
      const response = await request(t.app.server).post('/v1/decrypt/binary').set(AUTH).set('content-type', OCTET).set(headers).send(body);
      expect(response.status, code).toBe(422);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.body.code).toBe(code);
      expect(response.text).not.toContain('secret binary payload');
    }
  });

  it('bad headers are a 400 problem, never a 500', async () => {
    const cases: [Record<string, string>, string][] = [
      // What the header's pattern cannot say: the service's own checks.
      [{ 'x-envelope-context': 'a=%FF' }, 'InvalidContext'], // invalid UTF-8
      [{ 'x-envelope-context': 'a=%C3' }, 'InvalidContext'], // truncated UTF-8 sequence
      [{ 'x-envelope-context': 'a=1&a=2' }, 'InvalidContext'], // repeated key
      // What the pattern says (schema validation), the byte bounds included.
      [{ 'x-envelope-context': `k=${'v'.repeat(2049)}` }, 'InvalidRequest'], // value over 2048 bytes
      [{ 'x-envelope-context': `${'%C3%A9'.repeat(129)}=v` }, 'InvalidRequest'], // key over 256 bytes
      [{ 'x-envelope-context': 'a=%ZZ' }, 'InvalidRequest'], // malformed escape
      [{ 'x-envelope-context': '=1' }, 'InvalidRequest'], // empty key
      [{ 'x-envelope-context': 'a=1&' }, 'InvalidRequest'], // empty pair
      [{ 'x-envelope-context': 'a=caf\u00e9' }, 'InvalidRequest'], // raw non-ASCII (latin1 on the wire)
      [{ 'x-envelope-aad': 'not base64!' }, 'InvalidRequest'],
      [{ 'x-envelope-key-id': 'bad key id' }, 'InvalidRequest'],
    ];
    for (const [headers, code] of cases) {
      const response = await request(t.app.server).post('/v1/encrypt/binary').set(AUTH).set('content-type', OCTET).set(headers).send(Buffer.from('x'));
      expect(response.status, JSON.stringify(headers)).toBe(400);
      expect(response.body.code, JSON.stringify(headers)).toBe(code);
    }
  });

  it('only octet-stream is accepted here, and octet-stream only here', async () => {
    const json = await request(t.app.server).post('/v1/encrypt/binary').set(AUTH).send({ plaintext: 'aGk=' });
    expect(json.status).toBe(415);
    const octetOnJsonRoute = await request(t.app.server).post('/v1/encrypt').set(AUTH).set('content-type', OCTET).send(Buffer.from('hi'));
    expect(octetOnJsonRoute.status).toBe(415);
  });

  it('no token: 401, and the request is still audited', async () => {
    const before = t.auditEvents().length;
    const response = await request(t.app.server).post('/v1/encrypt/binary').set('content-type', OCTET).send(Buffer.from('x'));
    expect(response.status).toBe(401);
    const events = t.auditEvents().slice(before);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ eventName: 'Encrypt', httpStatus: 401 });
  });

  it('each request writes one Encrypt or Decrypt event with sizes, never bytes', async () => {
    const before = t.auditEvents().length;
    const plaintext = Buffer.from('AUDIT-MARKER-binary-payload');
    const encrypted = await encrypt(plaintext, { 'x-envelope-context': 'tenant=audit' });
    const decrypted = await decrypt(encrypted.body as Buffer);
    const events = t.auditEvents().slice(before);
    expect(events.map((event) => [event.eventName, event.httpStatus])).toEqual([
      ['Encrypt', 200],
      ['Decrypt', 200],
    ]);
    expect(events[0]).toMatchObject({
      requestID: encrypted.headers['x-request-id'],
      requestParameters: { encryptionContext: { tenant: 'audit' }, plaintextBytes: plaintext.length },
      responseElements: { ciphertextBytes: (encrypted.body as Buffer).length },
    });
    expect(events[1]).toMatchObject({
      requestID: decrypted.headers['x-request-id'],
      requestParameters: { ciphertextBytes: (encrypted.body as Buffer).length },
      responseElements: { plaintextBytes: plaintext.length },
    });
    expect(JSON.stringify(events)).not.toContain('AUDIT-MARKER');
  });
});

describe('binary API under the example policy', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ policyFile: POLICY });
    if (t.provider instanceof LocalKeyProvider) {
      for (const alias of ['alias/tenant-a', 'alias/tenant-b']) await t.provider.createAlias(alias, (await t.provider.createKey()).keyId);
    }
  });
  afterAll(async () => t?.close());

  it('judges the same rules as the JSON API: tenant A cannot use tenant B\'s key or open its data', async () => {
    const a = { authorization: 'Bearer demo-tenant-a-billing-token' };
    const b = { authorization: 'Bearer demo-tenant-b-reports-token' };
    const post = (path: string, auth: object, headers: Record<string, string>, body: Buffer) =>
      request(t.app.server).post(path).set(auth as Record<string, string>).set('content-type', OCTET).set(headers).buffer(true).parse(binaryParser).send(body);

    const mine = await post('/v1/encrypt/binary', a, { 'x-envelope-key-id': 'alias/tenant-a', 'x-envelope-context': 'tenant=tenant-a&purpose=billing' }, Buffer.from('a'));
    expect(mine.status).toBe(200);
    const theirsKey = await post('/v1/encrypt/binary', a, { 'x-envelope-key-id': 'alias/tenant-b', 'x-envelope-context': 'tenant=tenant-a&purpose=billing' }, Buffer.from('a'));
    expect(theirsKey.status).toBe(403);
    const openedByB = await post('/v1/decrypt/binary', b, {}, mine.body as Buffer);
    expect(openedByB.status).toBe(403);
    const openedByA = await post('/v1/decrypt/binary', a, {}, mine.body as Buffer);
    expect(openedByA.status).toBe(200);
  });
});

describe('binary API body limit', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ env: { BODY_LIMIT_BYTES: '4096' } });
  });
  afterAll(async () => t?.close());

  it('a body over BODY_LIMIT_BYTES is a 413, and audited', async () => {
    const before = t.auditEvents().length;
    const response = await request(t.app.server).post('/v1/encrypt/binary').set(AUTH).set('content-type', OCTET).send(Buffer.alloc(4097));
    expect(response.status).toBe(413);
    expect(response.body.code).toBe('PayloadTooLarge');
    expect(t.auditEvents().slice(before)).toMatchObject([{ eventName: 'Encrypt', httpStatus: 413 }]);
    const atLimit = await request(t.app.server).post('/v1/encrypt/binary').set(AUTH).set('content-type', OCTET).send(Buffer.alloc(4096));
    expect(atLimit.status).toBe(200);
  });
});

describe('binary header codecs', () => {
  it('formats and parses a context, percent-encoding what a header cannot carry', () => {
    const entries: [string, string][] = [['purpose', 'a&b=c d'], ['tenant', 'Ünïcödé 🔑']];
    const header = formatContextHeader(entries);
    expect(header).toMatch(/^[\x21-\x7e]*$/);
    // What the decrypt route answers is acceptable to the encrypt route's documented pattern.
    expect(header).toMatch(new RegExp(CONTEXT_HEADER_PATTERN));
    expect(parseContextHeader(header)).toEqual(Object.fromEntries(entries));
    expect(parseContextHeader('a=1+2')).toEqual({ a: '1 2' });
    expect(parseContextHeader('flag')).toEqual({ flag: '' });
    expect(parseContextHeader(undefined)).toBeUndefined();
  });

  it('keeps a real ARN as is and percent-encodes anything else', () => {
    const arn = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    expect(headerSafe(arn)).toBe(arn);
    expect(headerSafe('a b%ü')).toBe('a%20b%25%C3%BC');
  });
});
