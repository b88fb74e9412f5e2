/**
 * Memory shedding (MAX_MEMORY_USED_BYTES, MAX_HEAP_USED_BYTES, MAX_RSS_BYTES as a last resort;
 * admission/memory-pressure.ts, polled by @fastify/under-pressure): above a mark API requests are
 * refused with 503 + Retry-After right after authentication, before KMS sees them, audited
 * against their principal; /readyz answers 503 meanwhile while /healthz and /metrics keep
 * answering. The marks here are set below what any process uses, so the pressure is real, not
 * simulated.
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { memoryLimits } from '../../src/admission/memory-limits.js';
import { AUTH, buildTestApp, countingProvider } from '../helpers/app.js';

declare module 'fastify' {
  interface FastifyInstance {
    isUnderPressure(): boolean;
  }
}

describe.each([
  ['MAX_MEMORY_USED_BYTES', { MAX_MEMORY_USED_BYTES: '1048576', MAX_HEAP_USED_BYTES: '0' }],
  ['MAX_HEAP_USED_BYTES', { MAX_HEAP_USED_BYTES: '1048576', MAX_MEMORY_USED_BYTES: '0' }],
  ['MAX_RSS_BYTES (off by default)', { MAX_RSS_BYTES: '1048576', MAX_HEAP_USED_BYTES: '0', MAX_MEMORY_USED_BYTES: '0' }],
])('%s', (_name, env) => {
  it('above it, API requests get 503 Overloaded + Retry-After without KMS, audited once per principal then summarized; /readyz 503, the rest answers', async () => {
    let kms!: ReturnType<typeof countingProvider>;
    const t = await buildTestApp({ env, wrapProvider: (provider) => (kms = countingProvider(provider)) });
    try {
      expect(t.app.isUnderPressure()).toBe(true);
      const shed = await request(t.app.server).post('/v1/encrypt').set(AUTH).send({ plaintext: 'aGk=' });
      expect(shed.status).toBe(503);
      expect(shed.headers['retry-after']).toBe('5');
      expect(shed.body).toMatchObject({ code: 'Overloaded' });
      expect((await request(t.app.server).post('/v1/encrypt').set(AUTH).send({ plaintext: 'aGk=' })).status).toBe(503);
      expect(kms.calls.GenerateDataKey).toBeUndefined();
      const ready = await request(t.app.server).get('/readyz');
      expect(ready.status).toBe(503);
      expect(ready.body.checks).toMatchObject({ memory: 'shedding' });
      expect((await request(t.app.server).get('/healthz')).status).toBe(200);
      const metrics = await request(t.app.server).get('/metrics');
      expect(metrics.status).toBe(200);
      expect(metrics.text).toMatch(/^memory_shedding 1$/m);
      await t.app.close();
      const events = t.auditEvents();
      expect(events.filter((event) => event.errorCode === 'Overloaded')).toMatchObject([{ httpStatus: 503, userIdentity: { principalId: 'dev' } }]);
      expect(events.filter((event) => event.eventName === 'RefusalsSummarized')).toMatchObject([
        { serviceEventDetails: { principalType: 'dev-token', principalId: 'dev', summarizedRefusals: 1, byCode: { Overloaded: 1 }, refusalsInWindow: 2 } },
      ]);
    } finally {
      await t.close();
    }
  });
});

describe('memory settings by default', () => {
  it('derive from the memory limit: an eighth for request buffers (a quarter of that per principal), shedding above 60 %, not on RSS', () => {
    const MiB = 1024 * 1024;
    expect(memoryLimits({ MEMORY_LIMIT_BYTES: 512 * MiB, BODY_LIMIT_BYTES: 8 * MiB })).toEqual({
      memoryLimitBytes: 512 * MiB,
      requestBufferMaxBytes: 64 * MiB,
      requestBufferMaxBytesPerPrincipal: 16 * MiB,
      maxMemoryUsedBytes: Math.floor(0.6 * 512 * MiB),
      maxHeapUsedBytes: Math.floor(0.85 * getHeapStatistics().heap_size_limit),
      maxRssBytes: 0,
      lowWaterPercent: 75,
    });
  });

  it('never give a principal less than one largest body', () => {
    const MiB = 1024 * 1024;
    expect(memoryLimits({ MEMORY_LIMIT_BYTES: 64 * MiB, BODY_LIMIT_BYTES: 32 * MiB }).requestBufferMaxBytesPerPrincipal).toBe(32 * MiB);
  });
});

// Freed buffers leave external memory only when collected: the test collects them itself.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

describe('MAX_MEMORY_USED_BYTES (V8 heap used + external memory), with hysteresis', () => {
  it('sheds /v1 above the high mark with /readyz 503, keeps shedding between the marks, and recovers by itself below the low one', { timeout: 40_000 }, async () => {
    const MiB = 1024 * 1024;
    collectGarbage();
    const { heapUsed, external } = process.memoryUsage();
    const baseline = heapUsed + external;
    const high = baseline + 160 * MiB;
    const lowPercent = Math.floor((100 * (baseline + 80 * MiB)) / high);
    const t = await buildTestApp({ env: { MAX_MEMORY_USED_BYTES: String(high), MEMORY_LOW_WATER_PERCENT: String(lowPercent), MAX_HEAP_USED_BYTES: '0' } });
    const until = async (want: number, withinMs = 6_000) => {
      const deadline = Date.now() + withinMs;
      let status = 0;
      while (Date.now() < deadline) {
        status = (await request(t.app.server).get('/readyz')).status;
        if (status === want) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return status;
    };
    let held: Buffer[] = [];
    try {
      expect(await until(200)).toBe(200);
      held = [0, 1, 2].map(() => Buffer.alloc(64 * MiB, 1));
      expect(await until(503)).toBe(503);
      const shed = await request(t.app.server).post('/v1/encrypt').set(AUTH).send({ plaintext: 'aGk=' });
      expect(shed.status).toBe(503);
      expect(shed.body).toMatchObject({ code: 'Overloaded' });
      expect((await request(t.app.server).get('/healthz')).status).toBe(200);

      // Down to baseline + 128 MiB: below the high mark, above the low one. Still shedding.
      held.pop();
      collectGarbage();
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      expect((await request(t.app.server).get('/readyz')).status).toBe(503);

      // Below the low mark: serving again, and ready, with nothing else done.
      held = [];
      collectGarbage();
      expect(await until(200)).toBe(200);
      const served = await request(t.app.server).post('/v1/encrypt').set(AUTH).send({ plaintext: 'aGk=' });
      expect(served.status).toBe(200);
      // The shed request is in the audit log.
      expect(t.auditEvents().filter((event) => event.errorCode === 'Overloaded')).toHaveLength(1);
    } finally {
      held = [];
      await t.close();
    }
  });
});
