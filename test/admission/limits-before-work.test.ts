/**
 * Limits that run before a request costs anything: the per-principal rate limit and in-flight
 * cap are checked right after authentication, before the body is read; JSON bodies are bounded
 * in size (JSON_BODY_LIMIT_BYTES) and nesting before JSON.parse builds anything.
 *
 * "Not parsed" is shown without timing: the bodies sent over the limit would be a 400 (or a 413)
 * if they were read, and the answer is a 429.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH } from '../../src/http/json-body.js';
import type { KeyProvider } from '../../src/kms/provider.js';
import { AUTH, buildTestApp, type TestApp } from '../helpers/app.js';

const MiB = 1024 * 1024;
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const json = { ...AUTH, 'content-type': 'application/json' };

/** `[[[…]]]` nested `depth` deep: valid JSON, but far past the nesting bound. */
const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

describe('a principal over its rate limit', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ env: { RATE_LIMIT_MAX: '1', RATE_LIMIT_WINDOW_MS: '60000' } });
  });
  afterAll(async () => t?.close());

  it('gets 429 before its body is read: a huge, deeply nested or broken body is never parsed', async () => {
    const first = await request(t.app.server).post('/v1/encrypt').set(json).send({ plaintext: 'aGk=' });
    expect(first.status).toBe(200);

    for (const payload of [nested(400_000), '{"plaintext": "aGk=", broken', 'x'.repeat(2 * MiB)]) {
      const refused = await request(t.app.server).post('/v1/encrypt').set(json).send(payload);
      // Parsed, these would be 400 JsonTooDeep, 400 MalformedJson and 413 PayloadTooLarge.
      expect(refused.status, refused.text).toBe(429);
      expect(refused.body).toMatchObject({ code: 'RateLimited' });
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    }
    // Each refusal is audited, as the principal that made it.
    const events = t.auditEvents();
    expect(events.map((event) => event.httpStatus)).toEqual([200, 429, 429, 429]);
    expect(events[3]).toMatchObject({ userIdentity: { principalId: 'dev' }, errorCode: 'RateLimited' });
  });
});

describe('JSON bodies', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(async () => t?.close());

  const encrypt = (payload: string) => request(t.app.server).post('/v1/encrypt').set(json).send(payload);

  it(`nested deeper than ${MAX_JSON_DEPTH} levels: 400 JsonTooDeep, without building the tree`, async () => {
    for (const depth of [MAX_JSON_DEPTH + 1, 100_000]) {
      const body = `{"plaintext":"aGk=","context":${'{"a":'.repeat(depth)}"x"${'}'.repeat(depth)}}`;
      const response = await encrypt(body);
      expect(response.status).toBe(400);
      expect(response.body).toMatchObject({ code: 'JsonTooDeep' });
    }
    // A string ending in an escaped backslash does not hide the nesting after it.
    const afterBackslash = `{"plaintext":"aGk=","aad":"\\\\","context":${'{"a":'.repeat(100)}"x"${'}'.repeat(100)}}`;
    expect((await encrypt(afterBackslash)).body).toMatchObject({ code: 'JsonTooDeep' });
    // The bound is on structure only: brackets inside strings are just characters.
    const bracketsInStrings = JSON.stringify({ plaintext: 'aGk=', context: { tenant: `${'['.repeat(100)}"{{{` } });
    expect((await encrypt(bracketsInStrings)).status).toBe(200);
    // Audited like any bad request.
    expect(t.auditEvents().filter((event) => event.errorCode === 'JsonTooDeep')).toHaveLength(3);
  });

  it('over JSON_BODY_LIMIT_BYTES (1 MiB by default): 413, while the binary route takes the same payload', async () => {
    const plaintext = Buffer.alloc(MiB, 7);
    const viaJson = await encrypt(JSON.stringify({ plaintext: plaintext.toString('base64') }));
    expect(viaJson.status).toBe(413);
    expect(viaJson.body).toMatchObject({ code: 'PayloadTooLarge' });
    const viaBinary = await request(t.app.server).post('/v1/encrypt/binary').set({ ...AUTH, 'content-type': 'application/octet-stream' }).send(plaintext);
    expect(viaBinary.status).toBe(200);
  });

  it('JSON_BODY_LIMIT_BYTES never exceeds BODY_LIMIT_BYTES', async () => {
    const small = await buildTestApp({ env: { BODY_LIMIT_BYTES: '4096', JSON_BODY_LIMIT_BYTES: String(MiB) } });
    try {
      const response = await request(small.app.server).post('/v1/encrypt').set(json).send(JSON.stringify({ plaintext: 'A'.repeat(8192) }));
      expect(response.status).toBe(413);
    } finally {
      await small.close();
    }
  });
});

describe('MAX_IN_FLIGHT_PER_PRINCIPAL', () => {
  let t: TestApp;
  let open: () => void = () => {};
  let gate: Promise<void> = Promise.resolve();
  let waiting = 0;
  /** Holds every GenerateDataKey until open() is called: requests stay in flight. */
  const gated = (provider: KeyProvider): KeyProvider =>
    Object.assign(Object.create(provider) as KeyProvider, {
      generateDataKey: async (...args: Parameters<KeyProvider['generateDataKey']>) => {
        waiting += 1;
        await gate;
        return provider.generateDataKey(...args);
      },
    });

  /** Two principals with the same rights: the cap is per principal. */
  const token = { alpha: 'in-flight-alpha-token', beta: 'in-flight-beta-token' };
  const policy = `version: 1
authentication:
  apiKeys:
    - { name: alpha, sha256: "${sha256(token.alpha)}" }
    - { name: beta, sha256: "${sha256(token.beta)}" }
rules:
  - id: both
    principals: [alpha, beta]
    operations: [encrypt]
    keys: [alias/default]
    context: { optional: [tenant] }
`;
  let policyDir: string;

  beforeAll(async () => {
    policyDir = mkdtempSync(join(tmpdir(), 'in-flight-policy-'));
    writeFileSync(join(policyDir, 'policy.yaml'), policy);
    t = await buildTestApp({ env: { MAX_IN_FLIGHT_PER_PRINCIPAL: '2' }, wrapProvider: gated, policyFile: join(policyDir, 'policy.yaml') });
  });
  afterAll(async () => {
    await t?.close();
    rmSync(policyDir, { recursive: true, force: true });
  });
  afterEach(() => open());

  it('refuses a principal\'s request beyond the cap with 429 + Retry-After, audited, and frees the slots after; others are unaffected', async () => {
    gate = new Promise((resolve) => (open = resolve));
    const encrypt = (tenant: string, who: keyof typeof token = 'alpha') =>
      request(t.app.server)
        .post('/v1/encrypt')
        .set({ authorization: `Bearer ${token[who]}`, 'content-type': 'application/json' })
        .send({ plaintext: 'aGk=', context: { tenant } });
    // supertest sends when awaited; Promise.resolve sends these now.
    const held = [Promise.resolve(encrypt('a')), Promise.resolve(encrypt('b'))];
    while (waiting < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    const third = await encrypt('c');
    expect(third.status).toBe(429);
    expect(third.body).toMatchObject({ code: 'TooManyInFlight' });
    expect(third.headers['retry-after']).toBe('1');
    expect(t.auditEvents().map((event) => [event.httpStatus, event.errorCode])).toEqual([[429, 'TooManyInFlight']]);
    // beta is not alpha: its request is taken on (and waits at the gate like alpha's).
    const beta = Promise.resolve(encrypt('f', 'beta'));
    while (waiting < 3) await new Promise((resolve) => setTimeout(resolve, 5));

    open();
    expect((await beta).status).toBe(200);
    expect((await Promise.all(held)).map((response) => response.status)).toEqual([200, 200]);
    // The slots are back: two at once again.
    expect((await Promise.all([encrypt('d'), encrypt('e')])).map((response) => response.status)).toEqual([200, 200]);
  });
});
