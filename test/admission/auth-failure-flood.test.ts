/**
 * Unauthenticated floods: failed authentications are limited per client address before any
 * body is read (429 + Retry-After past AUTH_FAILURE_MAX in a window), and their audit volume is
 * bounded: the first failure of each kind per address and window gets its own event, the rest
 * are counted into one AuthFailuresSummarized event per address and window, chained as usual,
 * with the exact count. A caller with a valid token behind the same address is still served.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { verifyAuditLog } from '../../src/verifier/verify.js';
import type { AuthFailuresSummaryDetails } from '../../src/audit/event.js';
import { addressBucket } from '../../src/admission/address-bucket.js';
import { AuthFailureTracker } from '../../src/admission/auth-failures.js';
import { AUTH, buildTestApp, type TestApp } from '../helpers/app.js';

const FLOODER = '10.9.8.7';
const MAX = 5;
let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

// app.inject, not supertest: these tests need requests from several client addresses
// (`remoteAddress`), and every socket supertest opens comes from 127.0.0.1.
const tokenless = (app: TestApp, remoteAddress = FLOODER, payload = '{"plaintext":"aGk=", broken') =>
  app.app.inject({ method: 'POST', url: '/v1/encrypt', remoteAddress, headers: { 'content-type': 'application/json' }, payload });

/** The audit file after close (summaries are written then at the latest). */
async function closeAndRead(app: TestApp): Promise<Record<string, unknown>[]> {
  await app.app.close();
  const events = app.auditEvents();
  const verdict = await verifyAuditLog(app.auditPath);
  expect(verdict.ok, JSON.stringify(verdict)).toBe(true);
  return events;
}

describe('a flood of tokenless requests from one address', () => {
  it('is limited (429 + Retry-After) and writes a bounded number of audit lines, with the exact count', async () => {
    t = await buildTestApp({ env: { AUTH_FAILURE_MAX: String(MAX), AUTH_FAILURE_WINDOW_MS: '60000' } });
    const N = 300;
    const statuses: number[] = [];
    for (let i = 0; i < N; i += 1) {
      // The body would be a 400 if it were read: every answer below is decided before that.
      const response = await tokenless(t);
      statuses.push(response.statusCode);
      if (response.statusCode === 429) {
        expect(response.json()).toMatchObject({ code: 'TooManyAuthFailures' });
        expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
        expect(Number(response.headers['retry-after'])).toBeLessThanOrEqual(60);
      }
    }
    expect(statuses.slice(0, MAX)).toEqual(Array(MAX).fill(401));
    expect(statuses.slice(MAX)).toEqual(Array(N - MAX).fill(429));

    // A legitimate caller behind the same address is served in the middle of the flood.
    const legitimate = await t.app.inject({ method: 'POST', url: '/v1/encrypt', remoteAddress: FLOODER, headers: AUTH, payload: { plaintext: 'aGk=' } });
    expect(legitimate.statusCode).toBe(200);
    // Another address is not limited by the flooder's failures.
    expect((await tokenless(t, '10.1.1.1')).statusCode).toBe(401);

    const events = await closeAndRead(t);
    // First 401, first 429, the legitimate request, the other address's 401, one summary.
    expect(events).toHaveLength(5);
    const [first401, first429, ok, other, summary] = events;
    expect(first401).toMatchObject({ sourceIPAddress: FLOODER, httpStatus: 401, additionalEventData: { denyReason: 'missing_credentials' } });
    expect(first429).toMatchObject({ sourceIPAddress: FLOODER, httpStatus: 429, errorCode: 'TooManyAuthFailures', additionalEventData: { denyReason: 'too_many_failures' } });
    expect(ok).toMatchObject({ sourceIPAddress: FLOODER, httpStatus: 200, userIdentity: { principalId: 'dev' } });
    expect(other).toMatchObject({ sourceIPAddress: '10.1.1.1', httpStatus: 401 });
    expect(summary).toMatchObject({
      eventType: 'ServiceEvent',
      eventName: 'AuthFailuresSummarized',
      serviceEventDetails: {
        sourceIPAddress: FLOODER,
        summarizedFailures: N - 2,
        byReason: { missing_credentials: MAX - 1, too_many_failures: N - MAX - 1 },
        failuresInWindow: N,
      },
    });
    const metrics = await t.metrics.registry.getSingleMetricAsString('auth_failures_total');
    expect(metrics).toContain(`auth_failures_total{limited="true",audit="summarized"} ${N - MAX - 1}`);
  });

  it('writes each kind of failure once per window, and the summary when the window closes', async () => {
    // A window long enough that the twenty failures surely fall in one, even on a busy machine.
    t = await buildTestApp({ env: { AUTH_FAILURE_MAX: '1000', AUTH_FAILURE_WINDOW_MS: '3000' } });
    const bad = { method: 'POST' as const, url: '/v1/encrypt', remoteAddress: FLOODER, payload: { plaintext: 'aGk=' } };
    for (let i = 0; i < 10; i += 1) {
      expect((await tokenless(t)).statusCode).toBe(401);
      expect((await t.app.inject({ ...bad, headers: { authorization: 'Bearer not-the-dev-token' } })).statusCode).toBe(401);
    }
    expect(t.auditEvents().map((event) => (event.additionalEventData as { denyReason: string }).denyReason)).toEqual([
      'missing_credentials',
      'invalid_dev_token',
    ]);
    // The window closes by itself: the summary is written without any further request.
    const deadline = Date.now() + 10_000;
    while (t.auditEvents().length < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(t.auditEvents()[2]).toMatchObject({
      eventName: 'AuthFailuresSummarized',
      serviceEventDetails: { summarizedFailures: 18, byReason: { missing_credentials: 9, invalid_dev_token: 9 }, failuresInWindow: 20 },
    });
    // A new window: the first failure is written in full again.
    expect((await tokenless(t)).statusCode).toBe(401);
    const events = await closeAndRead(t);
    expect(events).toHaveLength(4);
    expect(events[3]).toMatchObject({ httpStatus: 401, additionalEventData: { denyReason: 'missing_credentials' } });
  });
});

describe('IPv6 sources', () => {
  it('are counted per /64: one host cannot get a fresh budget per address of its prefix', async () => {
    t = await buildTestApp({ env: { AUTH_FAILURE_MAX: String(MAX) } });
    const statuses: number[] = [];
    for (let i = 0; i < MAX + 3; i += 1) statuses.push((await tokenless(t, `2001:db8:1:2::${(i + 1).toString(16)}`)).statusCode);
    expect(statuses).toEqual([...Array(MAX).fill(401), 429, 429, 429]);
    // Another /64 has its own budget.
    expect((await tokenless(t, '2001:db8:1:3::1')).statusCode).toBe(401);
    const events = await closeAndRead(t);
    expect(events.at(-1)).toMatchObject({ eventName: 'AuthFailuresSummarized', serviceEventDetails: { sourceIPAddress: '2001:db8:1:2::/64', summarizedFailures: MAX + 1 } });
  });

  it('the /64 is found in every address notation', () => {
    expect(addressBucket('2001:0db8:0001:0002:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:1:2::/64');
    expect(addressBucket('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(addressBucket('2001:db8::')).toBe('2001:db8:0:0::/64');
    expect(addressBucket('1::2:3:4:5:1.2.3.4')).toBe('1:0:2:3::/64');
    expect(addressBucket('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    // IPv4, plain or mapped, is counted per address.
    expect(addressBucket('10.1.2.3')).toBe('10.1.2.3');
    expect(addressBucket('::ffff:10.1.2.3')).toBe('10.1.2.3');
  });
});

describe('the table of sources', () => {
  it('is bounded: a source pushed out by a spread of addresses has its summary written then, with nothing lost', async () => {
    const written: AuthFailuresSummaryDetails[] = [];
    const tracker = new AuthFailureTracker({
      maxFailures: 100,
      windowMs: 60_000,
      writeSummary: async (details) => void written.push(details),
      onSummaryError: (error) => {
        throw error;
      },
    });
    tracker.record('10.0.0.1', 'missing_credentials');
    tracker.record('10.0.0.1', 'missing_credentials');
    expect(written).toEqual([]);
    // 10,000 other addresses, one failure each (nothing to summarize for them).
    for (let i = 0; i < 10_000; i += 1) tracker.record(`10.1.${i >> 8}.${i & 255}`, 'missing_credentials');
    await Promise.resolve();
    expect(written).toEqual([expect.objectContaining({ sourceIPAddress: '10.0.0.1', summarizedFailures: 1, failuresInWindow: 2 })]);
    await tracker.flush();
    expect(written).toHaveLength(1);
  });
});
