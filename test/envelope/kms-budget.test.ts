/**
 * The per-principal KMS call budget (token bucket) with an injected clock, and how a request's
 * KmsTrace charges it: burst, refill, Retry-After, principals apart, and batch items paying
 * into their request's budget. Then the per-principal KMS concurrency (inTurn): at most N calls
 * of one principal in flight, the rest in arrival order, other principals never queued.
 */
import { describe, expect, it } from 'vitest';
import { KmsBudgetExceededError, KmsBudgets } from '../../src/envelope/kms-budget.js';
import { KmsTrace } from '../../src/envelope/kms-trace.js';
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
