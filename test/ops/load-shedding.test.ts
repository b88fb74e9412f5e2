/**
 * Load shedding (MAX_EVENT_LOOP_DELAY_MS, @fastify/under-pressure): when the event loop lags,
 * API requests are refused right after authentication with 503 + Retry-After and a problem
 * body, before any KMS call, and audited against their principal; the operational routes keep answering, so an overloaded instance is
 * never killed by its liveness probe nor goes dark on /metrics; and service resumes by itself.
 *
 * The lag is real: the test blocks this worker's event loop (the app runs in-process) until
 * under-pressure's 1 s sampler sees it.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTH, buildTestApp, countingProvider, type TestApp } from '../helpers/app.js';

declare module 'fastify' {
  interface FastifyInstance {
    isUnderPressure(): boolean;
  }
}

let test: TestApp;
let kms: ReturnType<typeof countingProvider>;

beforeAll(async () => {
  test = await buildTestApp({
    env: { MAX_EVENT_LOOP_DELAY_MS: '50' },
    wrapProvider: (provider) => (kms = countingProvider(provider)),
  });
});
afterAll(async () => {
  await test?.close();
});

function blockEventLoop(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // busy: nothing else runs on this thread meanwhile
  }
}

/** Blocks the loop until the sampler reports pressure (at most ~6 s). */
async function overload(): Promise<void> {
  for (let attempt = 0; attempt < 5 && !test.app.isUnderPressure(); attempt += 1) {
    blockEventLoop(1_100);
    await new Promise((done) => setTimeout(done, 20));
  }
  expect(test.app.isUnderPressure()).toBe(true);
}

const encrypt = () =>
  request(test.app.server).post('/v1/encrypt').set(AUTH).send({ plaintext: Buffer.from('x').toString('base64') });

describe('MAX_EVENT_LOOP_DELAY_MS', () => {
  it('sheds API requests with 503 + Retry-After, before KMS sees them, audited; /readyz stays about memory and dependencies', async () => {
    await overload();
    const shed = await encrypt();
    const health = await request(test.app.server).get('/healthz');
    const ready = await request(test.app.server).get('/readyz');
    const metrics = await request(test.app.server).get('/metrics');
    expect(test.app.isUnderPressure(), 'the overload ended before the checks did').toBe(true);

    expect(shed.status).toBe(503);
    expect(shed.headers['retry-after']).toBe('5');
    expect(shed.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(shed.body).toMatchObject({ status: 503, code: 'Overloaded', requestId: shed.headers['x-request-id'] });
    expect(kms.calls.GenerateDataKey).toBeUndefined();
    // Refused right after authentication, so audited against its principal (later ones of the
    // window are counted in a summary: test/ops/memory-shedding.test.ts).
    expect(test.auditEvents()).toMatchObject([{ httpStatus: 503, errorCode: 'Overloaded', userIdentity: { principalId: 'dev' } }]);

    // Operational routes are exempt.
    expect(health.status).toBe(200);
    expect(ready.status).toBe(200);
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(/^http_request_duration_seconds_count\{method="POST",route="\/v1\/encrypt",status_code="503"\} 1$/m);
  });

  it('serves again once the loop has caught up', async () => {
    const deadline = Date.now() + 5_000;
    while (test.app.isUnderPressure() && Date.now() < deadline) await new Promise((done) => setTimeout(done, 100));
    expect(test.app.isUnderPressure()).toBe(false);
    const response = await encrypt();
    expect(response.status, response.text).toBe(200);
    expect(kms.calls.GenerateDataKey).toBe(1);
  });
});
