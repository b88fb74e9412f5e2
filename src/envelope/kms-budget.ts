/**
 * Per-principal KMS call budgets: a token bucket per principal (KMS_BUDGET_PER_SECOND refill,
 * KMS_BUDGET_BURST capacity), charged one token per KMS call the principal causes.
 *
 * Why: the account's KMS quota is shared by every caller of the service. Without a budget, a
 * principal whose rule lets it choose a context value turns each new value into a
 * GenerateDataKey, and can spend the quota (and provoke throttling) for everyone. Cached and
 * coalesced keys cost nothing, so a healthy workload never comes near its budget.
 *
 * The buckets live in a bounded lru-cache. A bucket untouched for the time it takes to refill
 * is full again, so dropping it then (its TTL) loses nothing; only more than `principals`
 * callers active within one refill time can push a bucket out early.
 */
import { LRUCache } from 'lru-cache';
import type { KmsOperation } from '../kms/provider.js';

export interface KmsBudgetOptions {
  perSecond: number;
  burst: number;
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

/** What a request charges its KMS calls to. */
export interface KmsPayer {
  /** Takes one token for `operation`, or throws KmsBudgetExceededError. */
  charge(operation: KmsOperation): void;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

const DEFAULT_PRINCIPALS = 10_000;

export class KmsBudgets {
  private readonly buckets: LRUCache<string, Bucket>;
  private readonly now: () => number;

  constructor(private readonly options: KmsBudgetOptions) {
    if (!(options.perSecond > 0) || !(options.burst >= 1)) throw new RangeError('perSecond must be positive and burst at least 1');
    this.now = options.now ?? Date.now;
    this.buckets = new LRUCache<string, Bucket>({
      max: options.principals ?? DEFAULT_PRINCIPALS,
      ttl: Math.ceil((options.burst / options.perSecond) * 1000),
      updateAgeOnGet: true,
      perf: { now: this.now },
    });
  }

  /** The payer for one principal's requests. */
  payerFor(principalId: string): KmsPayer {
    return { charge: (operation) => this.charge(principalId, operation) };
  }

  /** Each principal with a bucket in use (a full bucket may have been dropped: it is full). */
  usage(): Array<{ principal: string; tokens: number; burst: number; perSecond: number }> {
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
