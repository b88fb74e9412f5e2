/**
 * The per-principal KMS call budget (token bucket) with an injected clock, and how a request's
 * KmsTrace charges it: burst, refill, Retry-After, principals apart, and batch items paying
 * into their request's budget. Then the per-principal KMS concurrency (inTurn): at most N calls
 * of one principal in flight, the rest in arrival order, other principals never queued; and the
 * per-principal pace: one principal's calls start 1/pacePerSecond apart, others' at once.
 */
import { describe, expect, it, vi } from 'vitest';
import { KmsBudgetExceededError, KmsBudgets } from '../../src/admission/kms-budget.js';
import { KmsTrace } from '../../src/keys/kms-trace.js';
import type { KmsOperation } from '../../src/kms/provider.js';

function budgets(perSecond: number, burst: number) {
  let time = 1_000_000;
  const rejected: KmsOperation[] = [];
  const b = new KmsBudgets({ perSecond, burst, now: () => time, onReject: (operation) => rejected.push(operation) });
  return { b, rejected, advance: (ms: number) => (time += ms) };
}

const spend = (b: KmsBudgets, principal: string, calls: number) => {
  let ok = 0;
  for (let i = 0; i < calls; i++) {
    try {
      b.charge(principal, 'GenerateDataKey');
      ok++;
    } catch (error) {
      if (!(error instanceof KmsBudgetExceededError)) throw error;
    }
  }
  return ok;
};

describe('KMS call budget', () => {
  it('allows a burst, then refuses with the time until one call is back', () => {
    const { b, rejected } = budgets(10, 5);
    expect(spend(b, 'a', 5)).toBe(5);
    let refusal: unknown;
    try {
      b.charge('a', 'Decrypt');
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(KmsBudgetExceededError);
    expect((refusal as KmsBudgetExceededError).retryAfterMs).toBe(100);
    expect(rejected).toEqual(['Decrypt']);
  });

  it('refills at the configured rate, never above the burst', () => {
    const { b, advance } = budgets(10, 5);
    spend(b, 'a', 5);
    advance(300);
    expect(spend(b, 'a', 10)).toBe(3);
    advance(60_000);
    expect(spend(b, 'a', 10)).toBe(5);
  });

  it('one principal spending its budget leaves every other principal its own', () => {
    const { b } = budgets(1, 3);
    expect(spend(b, 'flooder', 100)).toBe(3);
    expect(spend(b, 'billing', 3)).toBe(3);
  });

  it('a trace charges its principal; batch items charge the same budget; an unbilled trace is free', () => {
    const { b } = budgets(1, 2);
    const trace = new KmsTrace();
    trace.billTo('a', b.payerFor('a'));
    const item = trace.forItem();
    expect(item.owner).toBe('a');
    trace.charge('DescribeKey');
    item.charge('GenerateDataKey');
    expect(() => item.charge('GenerateDataKey')).toThrow(KmsBudgetExceededError);
    const free = new KmsTrace();
    for (let i = 0; i < 10; i++) free.charge('Decrypt');
  });
});

describe('KMS calls in turn', () => {
  /** A KMS call that stays in flight until released by the test. */
  function pendingCalls() {
    const started: string[] = [];
    const releases: (() => void)[] = [];
    const call = (name: string) => () =>
      new Promise<string>((resolve) => {
        started.push(name);
        releases.push(() => resolve(name));
      });
    const settle = () => new Promise((resolve) => setImmediate(resolve));
    return { started, call, settle, releaseFirst: () => releases.shift()?.() };
  }

  it('lets one principal have `concurrency` calls in flight, the rest in arrival order; other principals are not queued', async () => {
    const b = new KmsBudgets({ perSecond: 1, burst: 100, concurrency: 2 });
    const { started, call, settle, releaseFirst } = pendingCalls();
    const flooder = ['f1', 'f2', 'f3', 'f4'].map((name) => b.inTurn('flooder', call(name)));
    const billing = b.inTurn('billing', call('b1'));
    await settle();
    expect(started).toEqual(['f1', 'f2', 'b1']);
    expect(b.queued).toBe(2);
    releaseFirst();
    await settle();
    expect(started).toEqual(['f1', 'f2', 'b1', 'f3']);
    for (let i = 0; i < 4; i++) {
      releaseFirst();
      await settle();
    }
    expect(await Promise.all([...flooder, billing])).toEqual(['f1', 'f2', 'f3', 'f4', 'b1']);
    expect(b.queued).toBe(0);
  });

  it('a failed call frees its slot too', async () => {
    const b = new KmsBudgets({ perSecond: 1, burst: 100, concurrency: 1 });
    await expect(b.inTurn('a', () => Promise.reject(new Error('KMS said no')))).rejects.toThrow('KMS said no');
    expect(await b.inTurn('a', async () => 'next')).toBe('next');
  });

  it('a trace sends in its payer\'s turn; an unbilled trace at once', async () => {
    const b = new KmsBudgets({ perSecond: 1, burst: 100, concurrency: 1 });
    const { started, call, settle, releaseFirst } = pendingCalls();
    const trace = new KmsTrace();
    trace.billTo('a', b.payerFor('a'));
    const first = trace.inTurn(call('first'));
    const item = trace.forItem().inTurn(call('item'));
    const free = new KmsTrace().inTurn(call('free'));
    await settle();
    expect(started).toEqual(['first', 'free']);
    releaseFirst();
    await settle();
    expect(started).toEqual(['first', 'free', 'item']);
    releaseFirst();
    releaseFirst();
    expect(await Promise.all([first, item, free])).toEqual(['first', 'item', 'free']);
  });
});

describe('KMS calls paced', () => {
  /** Starts `names` as `principal`'s calls at once; resolves with each call's start time. */
  const startTimes = (b: KmsBudgets, principal: string, names: string[]) =>
    Promise.all(names.map((name) => b.inTurn(principal, async () => ({ name, at: performance.now() }))));

  it('starts one principal\'s calls 1/pacePerSecond apart, a burst included, and counts the waiting ones as queued', async () => {
    // 20 a second: 50 ms apart; concurrency out of the way, so the pace alone spaces them.
    const b = new KmsBudgets({ perSecond: 1, burst: 100, concurrency: 100, pacePerSecond: 20 });
    const before = performance.now();
    const calls = startTimes(b, 'flooder', ['f1', 'f2', 'f3', 'f4']);
    await new Promise((resolve) => setImmediate(resolve));
    expect(b.queued).toBe(3);
    const started = await calls;
    expect(started.map((call) => call.name)).toEqual(['f1', 'f2', 'f3', 'f4']);
    expect(started[0]!.at - before).toBeLessThan(40);
    for (let i = 1; i < started.length; i++) expect(started[i]!.at - started[i - 1]!.at).toBeGreaterThanOrEqual(45);
    expect(b.queued).toBe(0);
  });

  it('never makes another principal wait for one principal\'s pace', async () => {
    const b = new KmsBudgets({ perSecond: 1, burst: 100, concurrency: 100, pacePerSecond: 5 });
    const flooder = startTimes(b, 'flooder', ['f1', 'f2', 'f3']);
    const before = performance.now();
    const [billing] = await startTimes(b, 'billing', ['b1']);
    expect(billing!.at - before).toBeLessThan(40);
    // The flooder's third call waits two intervals (400 ms) behind its first.
    const started = await flooder;
    expect(started[2]!.at - started[0]!.at).toBeGreaterThanOrEqual(390);
  });

  it('keeps a principal\'s pace for one interval after its calls have ended', async () => {
    // 20 a second: a call right after the previous one ended still waits ~50 ms for its slot.
    const b = new KmsBudgets({ perSecond: 1, burst: 100, concurrency: 100, pacePerSecond: 20 });
    const [first] = await startTimes(b, 'a', ['first']);
    expect(b.queued).toBe(0);
    const [next] = await startTimes(b, 'a', ['next']);
    expect(next!.at - first!.at).toBeGreaterThanOrEqual(45);
  });

  it('lets a call start at once after a pause longer than the interval', async () => {
    const b = new KmsBudgets({ perSecond: 1, burst: 100, concurrency: 100, pacePerSecond: 20 });
    await startTimes(b, 'a', ['first']);
    await new Promise((resolve) => setTimeout(resolve, 60));
    const before = performance.now();
    const [next] = await startTimes(b, 'a', ['next']);
    expect(next!.at - before).toBeLessThan(20);
  });

  it('starts a principal\'s calls in arrival order even when their timers are set against a clock that stood still', async () => {
    // Timers set within one busy loop turn can share a clock read at the turn's start, while
    // each call measures its wait with the real clock: a later call's remaining wait is then
    // shorter than an earlier one's, and timers alone would start it first. Fake setTimeout
    // (its clock frozen until advanced) against the real performance.now() models exactly that.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      // 50 a second: 20 ms apart. Calls 2 and 3 are booked at once (waits 20 and 40 ms), then
      // the loop is kept busy for 30 ms before calls 4 and 5 are booked: call 4's slot (60 ms)
      // is then 30 ms away, less than call 3's 40 ms measured at its booking.
      const b = new KmsBudgets({ perSecond: 1, burst: 100, concurrency: 100, pacePerSecond: 50 });
      const order: number[] = [];
      const call = (n: number) => b.inTurn('a', async () => void order.push(n));
      const calls = [call(1), call(2), call(3)];
      const busyUntil = performance.now() + 30;
      while (performance.now() < busyUntil) {
        // A busy event loop: nothing else runs, timers included.
      }
      calls.push(call(4), call(5));
      await vi.runAllTimersAsync();
      await Promise.all(calls);
      expect(order).toEqual([1, 2, 3, 4, 5]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('does not pace without a pace', async () => {
    const b = new KmsBudgets({ perSecond: 1, burst: 100, concurrency: 100 });
    const before = performance.now();
    const started = await startTimes(b, 'a', ['1', '2', '3', '4', '5']);
    expect(started.at(-1)!.at - before).toBeLessThan(40);
  });
});
