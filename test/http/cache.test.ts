/**
 * The data-key cache seen from outside, against a real local-kms through the AWS SDK (and the
 * embedded provider): what reaches KMS for a burst of cold requests, for usage caps and for
 * age, and what the cache metrics say.
 */
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { AUTH, buildTestApp, countingProvider, describeProviders, type TestApp } from '../helpers/app.js';

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function appWithCounter(kind: 'local' | 'aws', env: Record<string, string> = {}, now?: () => number) {
  let counter!: ReturnType<typeof countingProvider>;
  t = await buildTestApp({
    provider: kind,
    env,
    ...(now ? { now } : {}),
    wrapProvider: (provider) => (counter = countingProvider(provider)),
  });
  return { app: t.app, calls: counter.calls };
}

const encrypt = (app: TestApp['app'], body: object = { plaintext: 'aGVsbG8=', context: { tenant: 'a' } }) =>
  request(app.server).post('/v1/encrypt').set(AUTH).send(body);

describeProviders('data-key cache over HTTP on the %s provider', (kind) => {

  it('single-flight on encrypt: 100 concurrent cold requests make one GenerateDataKey', async () => {
    const { app, calls } = await appWithCounter(kind);
    const responses = await Promise.all(Array.from({ length: 100 }, () => encrypt(app)));
    expect(responses.every((response) => response.status === 200)).toBe(true);
    expect(calls.GenerateDataKey).toBe(1);
    const events = t!.auditEvents().filter((event) => event.eventName === 'Encrypt');
    expect(events).toHaveLength(100);
    const misses = events.filter((event) => (event.additionalEventData as { cacheHit: boolean }).cacheHit === false);
    expect(misses).toHaveLength(1);
  });

  it('single-flight on decrypt: 100 concurrent cold decrypts of one data key make one KMS Decrypt', async () => {
    const { app, calls } = await appWithCounter(kind);
    const { body } = await encrypt(app);
    // As if written elsewhere: drop the copy encrypt offered to the decrypt cache.
    t!.service.caches.decrypt.clear();
    const responses = await Promise.all(Array.from({ length: 100 }, () => request(app.server).post('/v1/decrypt').set(AUTH).send({ ciphertext: body.ciphertext })));
    expect(responses.every((response) => response.status === 200)).toBe(true);
    expect(calls.Decrypt).toBe(1);
  });

  it('message cap: cap 10, 25 encrypts, 3 GenerateDataKey calls', async () => {
    const { app, calls } = await appWithCounter(kind, { CACHE_MAX_MESSAGES: '10' });
    for (let i = 0; i < 25; i++) expect((await encrypt(app)).status).toBe(200);
    expect(calls.GenerateDataKey).toBe(3);
    const metrics = await request(app.server).get('/metrics');
    expect(metrics.text).toContain('datakey_cache_evictions_total{cache="encrypt",reason="messages"} 2');
    expect(metrics.text).toContain('datakey_cache_hits_total{cache="encrypt"} 22');
    expect(metrics.text).toContain('datakey_cache_misses_total{cache="encrypt"} 3');
  });

  it('byte cap: 1,000-byte cap, 400-byte messages, a new key every second message', async () => {
    const { app, calls } = await appWithCounter(kind, { CACHE_MAX_BYTES: '1000' });
    const plaintext = Buffer.alloc(400, 7).toString('base64');
    for (let i = 0; i < 6; i++) expect((await encrypt(app, { plaintext })).status).toBe(200);
    expect(calls.GenerateDataKey).toBe(3);
  });

  it('age: a key is replaced once CACHE_MAX_AGE_MS has passed', async () => {
    let time = Date.now();
    const { app, calls } = await appWithCounter(kind, { CACHE_MAX_AGE_MS: '60000' }, () => time);
    await encrypt(app);
    time += 59_000;
    await encrypt(app);
    expect(calls.GenerateDataKey).toBe(1);
    time += 1_000;
    await encrypt(app);
    expect(calls.GenerateDataKey).toBe(2);
  });

  it('capacity: partitions beyond CACHE_CAPACITY evict the least recently used', async () => {
    const { app, calls } = await appWithCounter(kind, { CACHE_CAPACITY: '2' });
    for (const tenant of ['a', 'b', 'c', 'a']) await encrypt(app, { plaintext: 'aGk=', context: { tenant } });
    // a, b, c fill and evict a; the second a is a miss again.
    expect(calls.GenerateDataKey).toBe(4);
    const metrics = await request(app.server).get('/metrics');
    expect(metrics.text).toContain('datakey_cache_evictions_total{cache="encrypt",reason="capacity"} 2');
    expect(metrics.text).toContain('datakey_cache_entries{cache="encrypt"} 2');
  });

  it('contexts are separate partitions, and key order inside a context does not matter', async () => {
    const { app, calls } = await appWithCounter(kind);
    await encrypt(app, { plaintext: 'aGk=', context: { tenant: 'a', purpose: 'x' } });
    await encrypt(app, { plaintext: 'aGk=', context: { purpose: 'x', tenant: 'a' } });
    expect(calls.GenerateDataKey).toBe(1);
    await encrypt(app, { plaintext: 'aGk=', context: { tenant: 'b', purpose: 'x' } });
    expect(calls.GenerateDataKey).toBe(2);
  });
});
