/**
 * One queue of KMS calls with its own concurrency and pace: at most `concurrency` calls in
 * flight, started at most `pacePerSecond` a second, the others waiting in arrival order.
 *
 * The key directory's shared look-ups (a known key's refresh, the alias list) run here rather
 * than in the KMS turns of whichever principal happens to ask first: every principal relies on
 * them, so none may wait behind another principal's paced or full queue for them. They are at
 * most one per known key and TTL (and one alias list), whoever asks, so no caller can fill this
 * queue by asking more.
 */
export interface KmsQueueOptions {
  concurrency: number;
  pacePerSecond: number;
}

export class KmsQueue {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  /** When the next call may start (performance.now()). */
  private nextStart = 0;
  private pacing = 0;

  constructor(private readonly options: KmsQueueOptions) {
    if (!(options.concurrency >= 1) || !(options.pacePerSecond > 0)) throw new RangeError('concurrency must be at least 1 and pacePerSecond positive');
  }

  /** Calls waiting for a slot or for the pace (a gauge). */
  get queued(): number {
    return this.waiting.length + this.pacing;
  }

  async run<T>(send: () => Promise<T>): Promise<T> {
    // A finishing call hands its slot straight to the next waiter, so `active` counts it already.
    if (this.active >= this.options.concurrency) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active += 1;
    try {
      const now = performance.now();
      const startAt = Math.max(now, this.nextStart);
      this.nextStart = startAt + 1_000 / this.options.pacePerSecond;
      if (startAt > now) {
        this.pacing += 1;
        try {
          await new Promise((resolve) => setTimeout(resolve, startAt - now));
        } finally {
          this.pacing -= 1;
        }
      }
      return await send();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active -= 1;
    }
  }
}
