/**
 * Readiness follows KMS: /readyz is 200 while KMS answers, 503 (with Retry-After) within a
 * bounded time once it stops, and 200 again once it is back, with no restart of the service.
 * Liveness (/healthz) never depends on KMS: a KMS outage must take an instance out of the load
 * balancer, never get it killed.
 *
 * Runs against a private local-kms (startLocalKms) so stopping it cannot disturb other suites,
 * with READINESS_CACHE_MS=0 so every probe asks KMS.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Readiness } from '../../src/http/readiness.js';
import { AUTH, buildTestApp, type TestApp } from '../helpers/app.js';
import { findLocalKmsBinary, startLocalKms, type LocalKmsInstance } from '../helpers/local-kms.js';

const canRun = findLocalKmsBinary() !== undefined || process.env.CI === 'true';
if (!canRun) console.warn('[readiness] no local-kms binary to stop and restart (scripts/local-kms.sh install): the KMS outage suite is SKIPPED');

/** Polls /readyz until it answers `status`; returns how long that took. */
async function waitForReadiness(app: TestApp, status: number, timeoutMs: number): Promise<number> {
  const start = Date.now();
  for (;;) {
    const response = await request(app.app.server).get('/readyz');
    if (response.status === status) return Date.now() - start;
    if (Date.now() - start > timeoutMs) throw new Error(`/readyz still ${response.status} after ${timeoutMs} ms: ${response.text}`);
    await new Promise((done) => setTimeout(done, 100));
  }
}

describe.skipIf(!canRun)('readiness against a KMS that goes away and comes back', () => {
  let kms: LocalKmsInstance;
  let test: TestApp;

  beforeAll(async () => {
    kms = await startLocalKms();
    test = await buildTestApp({ provider: 'aws', endpoint: kms.endpoint, env: { READINESS_CACHE_MS: '0' } });
  });
  afterAll(async () => {
    await test?.close();
    await kms?.dispose();
  });

  const encrypt = () =>
    request(test.app.server)
      .post('/v1/encrypt')
      .set(AUTH)
      .send({ plaintext: Buffer.from('ready?').toString('base64'), context: { probe: 'readiness' } });

  it('is ready while KMS answers', async () => {
    const response = await request(test.app.server).get('/readyz');
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ status: 'ready', checks: { kms: 'ok', audit: 'ok', memory: 'ok' } });
  });

  it('is not ready (503, Retry-After) soon after KMS stops, while liveness stays 200', async () => {
    await kms.stop();
    // KMS timeouts in tests are small (connect 1 s, 2 attempts): one probe settles well within 10 s.
    const took = await waitForReadiness(test, 503, 10_000);
    expect(took).toBeLessThan(10_000);
    const response = await request(test.app.server).get('/readyz');
    expect(response.status).toBe(503);
    expect(response.headers['retry-after']).toBe('5');
    expect(response.body).toEqual({ status: 'not ready', checks: { kms: 'unavailable', audit: 'ok', memory: 'ok' } });

    expect((await request(test.app.server).get('/healthz')).status).toBe(200);

    // A request that needs KMS fails the same way: 503 with Retry-After, never 500.
    const failed = await encrypt();
    expect(failed.status, failed.text).toBe(503);
    expect(failed.headers['retry-after']).toBeDefined();
    expect(failed.headers['content-type']).toMatch(/^application\/problem\+json/);
  });

  it('is ready again once KMS is back, without restarting the service', async () => {
    await kms.restart();
    const took = await waitForReadiness(test, 200, 10_000);
    expect(took).toBeLessThan(10_000);
    const response = await encrypt();
    expect(response.status, response.text).toBe(200);
  });
});

describe('the readiness probe is cached and coalesced (READINESS_CACHE_MS)', () => {
  function probe(cacheMs: number) {
    let now = 1_000_000;
    let calls = 0;
    let kmsUp = true;
    /** While set, describeKey waits for it: a slow KMS. */
    let gate: Promise<void> | undefined;
    let openGate = (): void => undefined;
    const provider = {
      describeKey: async () => {
        calls += 1;
        await gate;
        if (!kmsUp) throw new Error('down');
        return {} as never;
      },
    };
    const readiness = new Readiness(provider, { isWritable: () => true }, 'alias/default', cacheMs, () => now);
    return {
      readiness,
      calls: () => calls,
      advance: (ms: number) => (now += ms),
      setKms: (up: boolean) => (kmsUp = up),
      slowKms: () => (gate = new Promise<void>((done) => (openGate = done))),
      kmsAnswers: () => openGate(),
    };
  }

  it('asks KMS at most once per READINESS_CACHE_MS, however often it is probed', async () => {
    const p = probe(5_000);
    for (let i = 0; i < 10; i += 1) expect((await p.readiness.check()).ready).toBe(true);
    expect(p.calls()).toBe(1);
    p.setKms(false);
    p.advance(4_999);
    expect((await p.readiness.check()).ready).toBe(true); // still the cached answer
    p.advance(1);
    expect(await p.readiness.check()).toEqual({ ready: false, kms: 'unavailable', audit: 'ok', memory: 'ok' });
    expect(p.calls()).toBe(2);
  });

  it('concurrent probes share one KMS call', async () => {
    const p = probe(0);
    p.slowKms();
    const checks = Promise.all(Array.from({ length: 20 }, () => p.readiness.check()));
    await new Promise((done) => setTimeout(done, 10));
    p.kmsAnswers();
    const reports = await checks;
    expect(reports.every((report) => report.ready)).toBe(true);
    expect(p.calls()).toBe(1);
  });

  it('an unwritable audit sink alone makes the instance not ready', async () => {
    const readiness = new Readiness({ describeKey: async () => ({}) as never }, { isWritable: () => false }, 'alias/default', 0);
    expect(await readiness.check()).toEqual({ ready: false, kms: 'ok', audit: 'unavailable', memory: 'ok' });
  });
});
