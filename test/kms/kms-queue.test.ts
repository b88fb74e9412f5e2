/**
 * The key directory's own KMS queue: at most `concurrency` calls in flight, started at most
 * `pacePerSecond` a second, in arrival order; a failed call frees its slot.
 */
import { describe, expect, it, vi } from 'vitest';
import { KmsQueue } from '../../src/kms/kms-queue.js';

describe('KmsQueue', () => {
  it('has at most `concurrency` calls in flight and starts the others in arrival order', async () => {
    const queue = new KmsQueue({ concurrency: 2, pacePerSecond: 100_000 });
    let inFlight = 0;
    let most = 0;
    const order: number[] = [];
    const call = (n: number) => async () => {
      order.push(n);
      most = Math.max(most, ++inFlight);
      await new Promise((resolve) => setTimeout(resolve, 5));
      inFlight -= 1;
      return n;
    };
    const calls = [1, 2, 3, 4, 5].map((n) => queue.run(call(n)));
    expect(queue.queued).toBe(3);
    expect(await Promise.all(calls)).toEqual([1, 2, 3, 4, 5]);
    expect(order).toEqual([1, 2, 3, 4, 5]);
    expect(most).toBe(2);
    expect(queue.queued).toBe(0);
  });

  it('starts calls 1/pacePerSecond apart, and a failed call frees its slot', async () => {
    const queue = new KmsQueue({ concurrency: 10, pacePerSecond: 20 });
    await expect(queue.run(() => Promise.reject(new Error('KMS said no')))).rejects.toThrow('KMS said no');
    const starts = await Promise.all([1, 2, 3].map(() => queue.run(async () => performance.now())));
    // 50 ms apart (timers may fire a little early or late; never all at once).
    expect(starts[2]! - starts[0]!).toBeGreaterThanOrEqual(90);
  });

  it('starts paced calls in arrival order even when their timers are set against a clock that stood still', async () => {
    // Fake setTimeout (its clock frozen until advanced) against the real performance.now():
    // timers set within one busy loop turn. Call 4's remaining wait, measured after the busy
    // wait, is shorter than call 3's; it must start after call 3 all the same.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const queue = new KmsQueue({ concurrency: 10, pacePerSecond: 50 });
      const order: number[] = [];
      const call = (n: number) => queue.run(async () => void order.push(n));
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
});
