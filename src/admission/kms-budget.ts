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
import { KmsQueue } from '../kms/kms-queue.js';
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


interface Bucket {
  tokens: number;
  updatedAt: number;
}

const DEFAULT_PRINCIPALS = 10_000;

export class KmsBudgets implements KmsPayers {
  private readonly buckets: LRUCache<string, Bucket>;
  private readonly now: () => number;
  /**
   * Each payer's KMS queue (kms/kms-queue.ts: its slots and its pace). Kept without expiry while
   * the payer has a call in flight or waiting; once idle, only until its pace has lapsed (the
   * next call could start at once), then dropped. Only more than `principals` payers busy at
   * once can push a busy queue out early: its calls still finish, a new call starts a new queue.
   */
  private readonly queues: LRUCache<string, KmsQueue>;

  constructor(private readonly options: KmsBudgetOptions) {
    if (!(options.perSecond > 0) || !(options.burst >= 1)) throw new RangeError('perSecond must be positive and burst at least 1');
    this.now = options.now ?? Date.now;
    this.buckets = new LRUCache<string, Bucket>({
      max: options.principals ?? DEFAULT_PRINCIPALS,
      ttl: Math.ceil((options.burst / options.perSecond) * 1000),
      updateAgeOnGet: true,
      perf: { now: this.now },
    });
    // ttl: every entry's is set where it is stored (0: kept while the payer is busy).
    this.queues = new LRUCache<string, KmsQueue>({ max: options.principals ?? DEFAULT_PRINCIPALS, ttl: 1, ttlAutopurge: false });
  }

  /** The payer for one principal's requests. */
  payerFor(principalId: string): KmsPayer {
    return { charge: (operation) => this.charge(principalId, operation), inTurn: (send) => this.inTurn(principalId, send) };
  }

  /** KMS calls waiting for a slot or for their principal's pace, all principals together (a gauge). */
  get queued(): number {
    let waiting = 0;
    for (const queue of this.queues.values()) waiting += queue.queued;
    return waiting;
  }

  /** Runs `send` in the principal's KMS queue: its turn among the principal's calls, in arrival order. */
  async inTurn<T>(principalId: string, send: () => Promise<T>): Promise<T> {
    const queue = this.queues.get(principalId) ?? new KmsQueue({ concurrency: this.options.concurrency, pacePerSecond: this.options.pacePerSecond });
    this.queues.set(principalId, queue, { ttl: 0 });
    try {
      return await queue.run(send);
    } finally {
      if (queue.idle && this.queues.peek(principalId) === queue) {
        // Idle: keep the queue only while its pace would still make a new call wait.
        const remaining = queue.paceRemainingMs();
        if (remaining > 0) this.queues.set(principalId, queue, { ttl: Math.ceil(remaining) });
        else this.queues.delete(principalId);
      }
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
