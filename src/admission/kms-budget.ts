/**
 * Per-principal KMS call budgets: a token bucket per principal (KMS_BUDGET_PER_SECOND refill,
 * KMS_BUDGET_BURST capacity), charged one token per KMS call the principal causes. "Principal"
 * here is the payer the HTTP layer names: the principal's tenant, or the principal alone
 * (authz/principal-key.ts tenantKey), so a tenant's principals share one bucket, turns and pace.
 *
 * Why: the account's KMS quota is shared by every caller of the service. Without a budget, a
 * principal whose rule lets it choose a context value turns each new value into a
 * GenerateDataKey, and can spend the quota (and provoke throttling) for everyone. Cached and
 * coalesced keys cost nothing, so a healthy workload never comes near its budget.
 *
 * Each principal also has at most `concurrency` KMS calls in flight (KMS_CONCURRENCY_PER_PRINCIPAL),
 * and starts them at most `pacePerSecond` a second (KMS_PACE_PER_SECOND); its further calls
 * wait their turn, first come first served. Each KMS call costs the event loop SDK work
 * (signing, serialising, parsing the answer): a principal spending its whole burst at once
 * would otherwise put a hundred calls' worth of it in front of every other caller's requests,
 * and hold as many of the SDK's connections to KMS. Two calls in flight alone do not bound
 * that work when KMS answers quickly: the pace does, spreading a burst over time instead of
 * letting it land at once.
 *
 * The buckets live in a bounded lru-cache. A bucket untouched for the time it takes to refill
 * is full again, so dropping it then (its TTL) loses nothing; only more than `principals`
 * callers active within one refill time can push a bucket out early.
 */
import { LRUCache } from 'lru-cache';
import type { KmsBudgetUsage, KmsPayer, KmsPayers } from '../kms/call-context.js';
import type { KmsOperation } from '../kms/provider.js';

export interface KmsBudgetOptions {
  perSecond: number;
  burst: number;
  /** KMS calls one principal may have in flight at once (default: unbounded). */
  concurrency?: number;
  /** KMS calls one principal may start per second, bursts included (default: unpaced). */
  pacePerSecond?: number;
  /** Buckets held at once (distinct principals active within one refill time). */
  principals?: number;
  now?: () => number;
  /** Called for every call refused for lack of budget (metrics: no principal label). */
  onReject?: (operation: KmsOperation) => void;
}

/** A principal's budget is spent: no KMS call was made. Retry-After says when one token is back. */
export class KmsBudgetExceededError extends Error {
  override readonly name = 'KmsBudgetExceededError';
  constructor(
    readonly operation: KmsOperation,
    readonly retryAfterMs: number,
  ) {
    super(`KMS ${operation} not attempted: this principal's KMS call budget is spent`);
  }
}


/** One principal's calls in flight, those waiting for a slot, and those waiting for its pace. */
interface Turns {
  active: number;
  waiting: (() => void)[];
  pacing: number;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

const DEFAULT_PRINCIPALS = 10_000;

export class KmsBudgets implements KmsPayers {
  private readonly buckets: LRUCache<string, Bucket>;
  private readonly now: () => number;
  /** Only principals with a call in flight: an entry goes when its last call ends. */
  private readonly turns = new Map<string, Turns>();
  /**
   * When each principal's next KMS call may start (performance.now(): the pace is real time,
   * whatever clock the buckets use). An entry lapses once that time has passed.
   */
  private readonly nextStarts: LRUCache<string, number>;
  /** Calls holding a slot but waiting for their principal's pace. */
  private pacing = 0;

  constructor(private readonly options: KmsBudgetOptions) {
    if (!(options.perSecond > 0) || !(options.burst >= 1)) throw new RangeError('perSecond must be positive and burst at least 1');
    this.now = options.now ?? Date.now;
    this.buckets = new LRUCache<string, Bucket>({
      max: options.principals ?? DEFAULT_PRINCIPALS,
      ttl: Math.ceil((options.burst / options.perSecond) * 1000),
      updateAgeOnGet: true,
      perf: { now: this.now },
    });
    this.nextStarts = new LRUCache<string, number>({ max: options.principals ?? DEFAULT_PRINCIPALS, ttlAutopurge: false, ttl: 1 });
  }

  /** The payer for one principal's requests. */
  payerFor(principalId: string): KmsPayer {
    return { charge: (operation) => this.charge(principalId, operation), inTurn: (send) => this.inTurn(principalId, send) };
  }

  /** KMS calls waiting for a slot or for their principal's pace, all principals together (a gauge). */
  get queued(): number {
    let waiting = this.pacing;
    for (const turns of this.turns.values()) waiting += turns.waiting.length;
    return waiting;
  }

  async inTurn<T>(principalId: string, send: () => Promise<T>): Promise<T> {
    const limit = this.options.concurrency ?? Number.POSITIVE_INFINITY;
    let turns = this.turns.get(principalId);
    if (!turns) this.turns.set(principalId, (turns = { active: 0, waiting: [], pacing: 0 }));
    // A finishing call hands its slot straight to the next waiter, so `active` counts it already.
    if (turns.active >= limit) await new Promise<void>((resolve) => turns.waiting.push(resolve));
    else turns.active += 1;
    try {
      // Awaited only when there is a wait: an unpaced call starts in the same tick. A call whose
      // slot has already come still waits while an earlier call of its payer waits for its
      // timer (a busy event loop fires timers late). This narrows reordering but does not rule
      // it out: timers set within one busy loop turn share libuv's cached clock, so a later
      // short wait can still fire first. Strict order needs one chained queue per payer.
      const delay = this.reservePaceSlot(principalId);
      if (delay > 0 || turns.pacing > 0) await this.waitForPace(turns, Math.max(delay, 0));
      return await send();
    } finally {
      const next = turns.waiting.shift();
      if (next) next();
      else if (--turns.active === 0) this.turns.delete(principalId);
    }
  }

  /**
   * Books this principal's next KMS call start, 1/pacePerSecond after its previous one; returns
   * how many milliseconds the call must wait for it (0: start now).
   */
  private reservePaceSlot(principalId: string): number {
    const pace = this.options.pacePerSecond;
    if (pace === undefined) return 0;
    const interval = 1_000 / pace;
    const now = performance.now();
    const startAt = Math.max(now, this.nextStarts.get(principalId) ?? now);
    this.nextStarts.set(principalId, startAt + interval, { ttl: Math.ceil(startAt + interval - now) });
    return startAt - now;
  }

  private async waitForPace(turns: Turns, ms: number): Promise<void> {
    this.pacing += 1;
    turns.pacing += 1;
    try {
      await new Promise((resolve) => setTimeout(resolve, ms));
    } finally {
      this.pacing -= 1;
      turns.pacing -= 1;
    }
  }

  /** Each principal with a bucket in use (a full bucket may have been dropped: it is full). */
  usage(): KmsBudgetUsage[] {
    const { perSecond, burst } = this.options;
    const now = this.now();
    return [...this.buckets.entries()].map(([principal, bucket]) => ({
      principal,
      tokens: Math.min(burst, bucket.tokens + ((now - bucket.updatedAt) / 1000) * perSecond),
      burst,
      perSecond,
    }));
  }

  charge(principalId: string, operation: KmsOperation): void {
    const { perSecond, burst } = this.options;
    const now = this.now();
    const bucket = this.buckets.get(principalId) ?? { tokens: burst, updatedAt: now };
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.updatedAt) / 1000) * perSecond);
    bucket.updatedAt = now;
    this.buckets.set(principalId, bucket);
    if (bucket.tokens < 1) {
      this.options.onReject?.(operation);
      throw new KmsBudgetExceededError(operation, Math.ceil(((1 - bucket.tokens) / perSecond) * 1000));
    }
    bucket.tokens -= 1;
  }
}
