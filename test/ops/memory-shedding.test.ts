/**
 * Memory shedding (MAX_HEAP_USED_BYTES, MAX_RSS_BYTES, @fastify/under-pressure): above either
 * threshold API requests are refused at the door with 503 + Retry-After, before KMS or the
 * audit log see them, while the operational routes keep answering. The thresholds here are set
 * below what any process uses, so the pressure is real, not simulated.
 */
import { getHeapStatistics } from 'node:v8';
import { totalmem } from 'node:os';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { memoryLimits } from '../../src/http/memory-limits.js';
import { AUTH, buildTestApp, countingProvider } from '../helpers/app.js';

declare module 'fastify' {
  interface FastifyInstance {
    isUnderPressure(): boolean;
  }
}

describe.each([
  ['MAX_HEAP_USED_BYTES', { MAX_HEAP_USED_BYTES: '1048576', MAX_RSS_BYTES: '0' }],
  ['MAX_RSS_BYTES', { MAX_RSS_BYTES: '1048576', MAX_HEAP_USED_BYTES: '0' }],
])('%s', (_name, env) => {
  it('above it, API requests get 503 Overloaded + Retry-After, unaudited and without KMS; operations still answer', async () => {
    let kms!: ReturnType<typeof countingProvider>;
    const t = await buildTestApp({ env, wrapProvider: (provider) => (kms = countingProvider(provider)) });
    try {
      // under-pressure samples memory once a second.
      const deadline = Date.now() + 5_000;
      while (!t.app.isUnderPressure() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      const shed = await request(t.app.server).post('/v1/encrypt').set(AUTH).send({ plaintext: 'aGk=' });
      expect(shed.status).toBe(503);
      expect(shed.headers['retry-after']).toBe('5');
      expect(shed.body).toMatchObject({ code: 'Overloaded' });
      expect(kms.calls.GenerateDataKey).toBeUndefined();
      expect(t.auditEvents()).toEqual([]);
      expect((await request(t.app.server).get('/healthz')).status).toBe(200);
      expect((await request(t.app.server).get('/metrics')).status).toBe(200);
    } finally {
      await t.close();
    }
  });
});

describe('memory thresholds by default', () => {
  it('are on: 85 % of the V8 heap limit, 90 % of the memory the process may use', () => {
    const limits = memoryLimits({});
    expect(limits.maxHeapUsedBytes).toBe(Math.floor(0.85 * getHeapStatistics().heap_size_limit));
    expect(limits.maxRssBytes).toBeGreaterThan(0);
    expect(limits.maxRssBytes).toBeLessThanOrEqual(Math.floor(0.9 * totalmem()));
  });

  it('and 0 turns each off', () => {
    expect(memoryLimits({ MAX_HEAP_USED_BYTES: 0, MAX_RSS_BYTES: 0 })).toEqual({ maxHeapUsedBytes: 0, maxRssBytes: 0 });
  });
});
