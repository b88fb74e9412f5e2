/**
 * Limits counted for the whole fleet in Redis (REDIS_URL), with rate-limiter-flexible: each
 * limit is a RateLimiterRedis whose insurance limiter is a RateLimiterMemory of the same size.
 * When Redis does not answer within REDIS_COMMAND_TIMEOUT_MS, or the connection is down (then
 * at once: the offline queue is off), the decision is made by the insurance limiter: the limit
 * holds per process, never opens up. The first such decision after a shared one, and the first
 * shared one after a fallback, are each logged once and change the
 * `shared_limits_fallback` gauge (FallbackState). While falling back, Redis is asked again at
 * most once every PROBE_INTERVAL_MS; the other decisions go straight to the per-process
 * limiter, so a Redis that hangs costs one decision in a second the command timeout, not all.
 *
 * Without Redis a limiter is the memory one alone (the same API, per process); the service
 * then keeps its per-process limiters as they are and uses none of these.
 *
 * Only counters go to Redis, keyed by principalKey or address bucket (never a token, never key
 * material). rate-limiter-flexible counts in fixed windows of whole seconds: a window given in
 * milliseconds is rounded up.
 */
import type { Logger } from 'pino';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Redis } from '../fleet/redis.js';

/** While Redis fails, how often one decision tries it again. */
export const PROBE_INTERVAL_MS = 1_000;

/** Whether decisions are fleet-wide or per process, with one log line and metric per change. */
export class FallbackState {
  private fallingBack = false;
  /** While falling back: when the next decision may try Redis. */
  private probeAt = 0;

  constructor(
    private readonly logger: Logger,
    private readonly onChange: (fallingBack: boolean) => void = () => {},
    /** Each decision made per process while Redis was configured (a counter). */
    private readonly onLocalDecision: (limit: string) => void = () => {},
  ) {}

  get active(): boolean {
    return this.fallingBack;
  }

  /** True when a decision should go to Redis: always, except while falling back between probes. */
  tryRedis(): boolean {
    if (!this.fallingBack) return true;
    const now = Date.now();
    if (now < this.probeAt) return false;
    this.probeAt = now + PROBE_INTERVAL_MS;
    return true;
  }

  /** The connection is ready again: the next decision tries Redis at once. */
  probeNow(): void {
    this.probeAt = 0;
  }

  /** A decision of `limit` was made per process without asking Redis (between probes). */
  skipped(limit: string): void {
    this.onLocalDecision(limit);
  }

  /** A decision of `limit` was made per process: Redis failed or was not ready. */
  local(limit: string, error?: unknown): void {
    this.onLocalDecision(limit);
    this.probeAt = Date.now() + PROBE_INTERVAL_MS;
    if (this.fallingBack) return;
    this.fallingBack = true;
    this.onChange(true);
    const reason = error instanceof Error ? { errorName: error.name, errorMessage: error.message } : {};
    this.logger.warn({ limit, ...reason }, 'shared limits: Redis unavailable, limits now per process');
  }

  /** A decision was made in Redis again. */
  shared(): void {
    if (!this.fallingBack) return;
    this.fallingBack = false;
    this.onChange(false);
    this.logger.info('shared limits: Redis answering, limits fleet-wide again');
  }
}

export interface WindowDecision {
  allowed: boolean;
  /** Points counted in the window, this one included. */
  consumed: number;
  /** Until the window ends (the Retry-After of a refusal). */
  msBeforeNext: number;
}

export interface WindowSpec {
  /** Names the limit in Redis keys, logs and metrics ("rate", "kms", "auth"). */
  name: string;
  points: number;
  durationMs: number;
}

/** Marks the options object of a call the insurance limiter answered (rate-limiter-flexible passes it through). */
const INSURED = Symbol('insured');
type CallOptions = { [INSURED]?: boolean };

class InsuranceLimiter extends RateLimiterMemory {
  override consume(key: string | number, points?: number, options: CallOptions = {}): Promise<RateLimiterRes> {
    options[INSURED] = true;
    return super.consume(key, points, options as Record<string, unknown>);
  }
}

/** One fixed-window limit: fleet-wide with Redis, per process without. */
export class WindowLimiter {
  private readonly limiter: RateLimiterAbstract;
  /** The per-process limiter behind the Redis one (its insurance), when there is Redis. */
  private readonly insurance: InsuranceLimiter | undefined;

  constructor(
    readonly spec: WindowSpec,
    private readonly store: { redis: Redis; keyPrefix: string; state: FallbackState } | undefined,
  ) {
    const options = { points: spec.points, duration: Math.max(1, Math.ceil(spec.durationMs / 1000)) };
    this.insurance = store ? new InsuranceLimiter({ ...options, keyPrefix: spec.name }) : undefined;
    this.limiter = store
      ? new RateLimiterRedis({
          ...options,
          storeClient: store.redis,
          keyPrefix: `${store.keyPrefix}${spec.name}`,
          rejectIfRedisNotReady: true,
          insuranceLimiter: this.insurance,
        })
      : new RateLimiterMemory({ ...options, keyPrefix: spec.name });
  }

  async consume(key: string, points = 1): Promise<WindowDecision> {
    const options: CallOptions = {};
    const skipRedis = this.store !== undefined && !this.store.state.tryRedis();
    let result: RateLimiterRes;
    let allowed = true;
    try {
      result = await (skipRedis ? this.insurance! : this.limiter).consume(key, points, options as Record<string, unknown>);
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      result = error;
      allowed = false;
    }
    if (this.store) {
      if (skipRedis) this.store.state.skipped(this.spec.name);
      else if (options[INSURED]) this.store.state.local(this.spec.name);
      else this.store.state.shared();
    }
    return { allowed, consumed: result.consumedPoints, msBeforeNext: result.msBeforeNext };
  }
}

/** Makes the limiters: in Redis when one is given, else in memory. */
export class SharedLimits {
  constructor(
    readonly redis: Redis | undefined,
    readonly keyPrefix: string,
    readonly state: FallbackState,
  ) {}

  get fleetWide(): boolean {
    return this.redis !== undefined;
  }

  window(spec: WindowSpec): WindowLimiter {
    return new WindowLimiter(spec, this.redis ? { redis: this.redis, keyPrefix: this.keyPrefix, state: this.state } : undefined);
  }
}
