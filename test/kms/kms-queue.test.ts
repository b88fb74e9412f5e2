/**
 * The key directory's own KMS queue: at most `concurrency` calls in flight, started at most
 * `pacePerSecond` a second, in arrival order; a failed call frees its slot.
 */
import { describe, expect, it } from 'vitest';
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
});
