/**
 * Held refusals (src/admission/refusal-hold.ts), against a listening server over real sockets: a
 * caller that retries its 429s without backing off is paced to one request per connection per
 * hold, other callers are never held, the hold is taken off Retry-After, the bounds answer at
 * once beyond them, and shutdown releases every hold.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { RefusalHolds } from '../../src/admission/refusal-hold.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';

const POLICY = new URL('../fixtures/policy/neighbours.yaml', import.meta.url).pathname;
const FLOODER = 'token-flooder';
const BILLING = 'token-billing';
const HELLO = Buffer.from('hello').toString('base64');

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function listening(env: Record<string, string>): Promise<string> {
  t = await buildTestApp({ policyFile: POLICY, env });
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  const address = t.app.server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return `http://127.0.0.1:${address.port}`;
}

function encrypt(url: string, token: string | undefined, purpose = 'reports', signal?: AbortSignal): Promise<Response> {
  return fetch(`${url}/v1/encrypt`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ plaintext: HELLO, context: { purpose } }),
    ...(signal ? { signal } : {}),
  });
}

async function holdCounts(): Promise<Record<string, number>> {
  const text = await t!.metrics.registry.getSingleMetricAsString('refusal_holds_total');
  const counts: Record<string, number> = {};
  for (const match of text.matchAll(/refusal_holds_total\{outcome="(\w+)"\} (\d+)/g)) counts[match[1]!] = Number(match[2]);
  return counts;
}

/** `connections` closed loops of `token`'s encrypts, each on a new context, for `ms`; returns the statuses seen. */
async function closedLoops(url: string, token: string | undefined, connections: number, ms: number): Promise<number[]> {
  const statuses: number[] = [];
  const until = Date.now() + ms;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (Date.now() < until) {
        const response = await encrypt(url, token, randomUUID());
        await response.arrayBuffer();
        statuses.push(response.status);
      }
    }),
  );
  return statuses;
}

describe('held refusals over HTTP', () => {
  it('paces a caller that retries its 429s at once, and never holds another caller', async () => {
    // Each new context costs the flooder a KMS call: over its budget after two, 429 KmsBudgetExceeded.
    const url = await listening({ KMS_BUDGET_BURST: '2', KMS_BUDGET_PER_SECOND: '1', REFUSAL_HOLD_MAX_MS: '400' });
    const [flooder, billing] = await Promise.all([
      closedLoops(url, FLOODER, 8, 1_200),
      (async () => {
        const times: number[] = [];
        for (let i = 0; i < 20; i++) {
          const started = performance.now();
          const response = await encrypt(url, BILLING);
          expect(response.status).toBe(200);
          await response.arrayBuffer();
          times.push(performance.now() - started);
        }
        return times;
      })(),
    ]);
    // 8 connections, each refused answer held 200 to 400 ms, for 1.2 s: at most 7 answers per
    // connection (answered at once, the same loops make hundreds), plus the few the refill serves.
    expect(flooder.filter((status) => status === 429).length).toBeGreaterThan(0);
    expect(flooder.length).toBeLessThanOrEqual(8 * 7 + 4);
    // Every hold was one of the flooder's refusals: billing, within its limits, waited none.
    expect((await holdCounts()).held).toBe(flooder.filter((status) => status === 429).length);
    expect(billing).toHaveLength(20);
  });

  it('without holding (REFUSAL_HOLD_MAX_MS=0) the same loops are answered as fast as they ask', async () => {
    const url = await listening({ KMS_BUDGET_BURST: '2', KMS_BUDGET_PER_SECOND: '1', REFUSAL_HOLD_MAX_MS: '0' });
    const flooder = await closedLoops(url, FLOODER, 8, 1_200);
    // Counted, not timed (a busy machine makes fewer loops): no refusal was held, each was
    // answered at once and counted as such.
    const refused = flooder.filter((status) => status === 429).length;
    expect(refused).toBeGreaterThan(0);
    expect(await holdCounts()).toEqual({ off: refused });
  });

  it('takes the time held off Retry-After, and holds unauthenticated sources by address', async () => {
    const url = await listening({ AUTH_FAILURE_MAX: '1', AUTH_FAILURE_WINDOW_MS: '60000', REFUSAL_HOLD_MAX_MS: '3000' });
    expect((await encrypt(url, undefined)).status).toBe(401);
    const started = performance.now();
    const refused = await encrypt(url, undefined);
    expect(refused.status).toBe(429);
    // Held between half and all of REFUSAL_HOLD_MAX_MS.
    expect(performance.now() - started).toBeGreaterThanOrEqual(1_400);
    // The window has about 60 s left when refused; at least 1.5 s of it went by before the answer.
    expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(59);
    expect((await holdCounts()).held).toBe(1);
  });

  it('beyond REFUSAL_HOLD_PER_CALLER answers at once', async () => {
    // Holds far longer than the five refusals take to decide, so none ends and frees a place
    // first; close() then sends the held ones.
    const url = await listening({ RATE_LIMIT_MAX: '1', REFUSAL_HOLD_MAX_MS: '20000', REFUSAL_HOLD_PER_CALLER: '2' });
    expect((await encrypt(url, FLOODER)).status).toBe(200);
    const statuses = Promise.all(Array.from({ length: 5 }, () => encrypt(url, FLOODER).then((r) => r.status)));
    await expect.poll(holdCounts).toMatchObject({ held: 2, over_cap: 3 });
    const closing = t!.app.close();
    expect(await statuses).toEqual([429, 429, 429, 429, 429]);
    await closing;
  });

  it('a client that goes away frees its place', async () => {
    const url = await listening({ RATE_LIMIT_MAX: '1', REFUSAL_HOLD_MAX_MS: '30000', REFUSAL_HOLD_PER_CALLER: '1' });
    expect((await encrypt(url, FLOODER)).status).toBe(200);
    const abandoned = new AbortController();
    const first = encrypt(url, FLOODER, 'reports', abandoned.signal).catch((error: Error) => error.name);
    await expect.poll(async () => (await holdCounts()).held).toBe(1);
    abandoned.abort();
    expect(await first).toBe('AbortError');
    await expect.poll(() => t!.metrics.registry.getSingleMetricAsString('refusals_held')).toMatch(/refusals_held 0/);
    const second = new AbortController();
    const next = encrypt(url, FLOODER, 'reports', second.signal).catch(() => undefined);
    await expect.poll(async () => (await holdCounts()).held).toBe(2);
    expect((await holdCounts()).over_cap ?? 0).toBe(0);
    second.abort();
    await next;
  });

  it('shutdown sends every held answer at once', async () => {
    const url = await listening({ RATE_LIMIT_MAX: '1', REFUSAL_HOLD_MAX_MS: '30000' });
    expect((await encrypt(url, FLOODER)).status).toBe(200);
    const held = encrypt(url, FLOODER);
    await expect.poll(async () => (await holdCounts()).held).toBe(1);
    const closing = t!.app.close();
    // Well before the 30 s hold would end (the test's own timeout is shorter).
    expect((await held).status).toBe(429);
    await closing;
  });
});

describe('RefusalHolds bounds', () => {
  const never = () => {};

  it('holds per caller and in total up to the bounds, and releases all at shutdown', async () => {
    const holds = new RefusalHolds({ maxMs: 60_000, perCaller: 2, total: 3 });
    const a1 = holds.hold('a', 5_000, never);
    const a2 = holds.hold('a', 5_000, never);
    expect(holds.hold('a', 5_000, never).outcome).toBe('over_cap');
    const b1 = holds.hold('b', 5_000, never);
    expect(holds.hold('c', 5_000, never).outcome).toBe('over_cap');
    expect([a1.outcome, a2.outcome, b1.outcome]).toEqual(['held', 'held', 'held']);
    expect(holds.heldCount).toBe(3);
    holds.releaseAll();
    await Promise.all([a1.done, a2.done, b1.done]);
    expect(holds.heldCount).toBe(0);
    expect(holds.hold('a', 5_000, never).outcome).toBe('off');
  });

  it('never holds longer than maxMs, and not at all when it is 0', async () => {
    const capped = new RefusalHolds({ maxMs: 50, perCaller: 1, total: 1 });
    // (Each hold is drawn between 25 and 50 ms here.)
    const { done } = capped.hold('a', 60_000, never);
    expect(await done).toBeLessThan(5_000);
    expect(new RefusalHolds({ maxMs: 0, perCaller: 1, total: 1 }).hold('a', 60_000, never).outcome).toBe('off');
  });
});
