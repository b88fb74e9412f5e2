/**
 * One queue of KMS calls: at most `concurrency` calls in flight, started at most `pacePerSecond`
 * a second, every call starting in arrival order. Two users: each payer's KMS turns
 * (admission/kms-budget.ts keeps one queue per payer), and the key directory's shared look-ups
 * (a known key's refresh, the alias list), which run in a queue of their own rather than in
 * the turns of whichever principal happens to ask first: every principal relies on them, so
 * none may wait behind another principal's paced or full queue for them. They are at most one
 * per known key and TTL (and one alias list), whoever asks, so no caller can fill that queue
 * by asking more.
 *
 * Start order is arrival order by construction: each call waits for the start of the call
 * that arrived before it, and only then sleeps for what remains of the interval since that
 * start. Timers alone would not keep the order: a call's wait is measured on the
 * real clock, but a timer may be set against a clock read at the start of a busy loop turn,
 * so a later call's shorter wait could fire first.
 */
export interface KmsQueueOptions {
  /** Calls in flight at once (default: unbounded). */
  concurrency?: number;
  /** Calls started per second, bursts included (default: unpaced). */
  pacePerSecond?: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class KmsQueue {
  private active = 0;
  /** Calls waiting for a slot, in arrival order. */
  private readonly waiting: (() => void)[] = [];
  /** Calls holding a slot but not started yet: waiting for the previous start or the pace. */
  private pacing = 0;
  /** The start of the latest call that has not started yet (undefined: every call has). */
  private lastStart: Promise<void> | undefined;
  /** When the next call may start (performance.now()). */
  private nextStart = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: KmsQueueOptions = {}) {
    const { concurrency, pacePerSecond } = options;
    if ((concurrency !== undefined && !(concurrency >= 1)) || (pacePerSecond !== undefined && !(pacePerSecond > 0))) {
      throw new RangeError('concurrency must be at least 1 and pacePerSecond positive');
    }
  }

  /** Calls waiting for a slot or for their start (a gauge). */
  get queued(): number {
    return this.waiting.length + this.pacing;
  }

  /** No call in flight or waiting. */
  get idle(): boolean {
    return this.active === 0;
  }

  /** Milliseconds until a new call could start at once as far as the pace goes (0: now). */
  paceRemainingMs(): number {
    return Math.max(0, this.nextStart - performance.now());
  }

  async run<T>(send: () => Promise<T>): Promise<T> {
    const previous = this.lastStart;
    let markStarted!: () => void;
    const start = new Promise<void>((resolve) => (markStarted = resolve));
    this.lastStart = start;
    // A finishing call hands its slot straight to the next waiter, so `active` counts it already.
    // Slots go in arrival order, so every earlier call holds one: waiting for its start below
    // cannot deadlock.
    if (this.active >= (this.options.concurrency ?? Number.POSITIVE_INFINITY)) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active += 1;
    try {
      try {
        // Awaited only when there is a wait: an unpaced call with nobody before it starts in the same tick.
        if (previous) await this.pace(previous);
        const delay = this.paceDelay();
        if (delay > 0) await this.pace(sleep(delay));
      } finally {
        // Spaced from the actual start, not the planned one: a timer fired late then cannot
        // leave the next call less than an interval behind.
        this.markStart();
        markStarted();
        if (this.lastStart === start) this.lastStart = undefined;
      }
      return await send();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active -= 1;
    }
  }

  /** Milliseconds this call must still wait for the pace (0: start now). */
  private paceDelay(): number {
    return this.nextStart - performance.now();
  }

  /** Marks a call started now: the next may start 1/pacePerSecond later, whenever this one was due. */
  private markStart(): void {
    const pace = this.options.pacePerSecond;
    if (pace !== undefined) this.nextStart = performance.now() + 1_000 / pace;
  }

  private async pace(wait: Promise<void>): Promise<void> {
    this.pacing += 1;
    try {
      await wait;
    } finally {
      this.pacing -= 1;
    }
  }
}
