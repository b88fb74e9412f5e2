/**
 * Limits counted for the whole fleet in Redis (REDIS_URL), with rate-limiter-flexible: each
 * limit is a RateLimiterRedis whose insurance limiter is a RateLimiterMemory of the same size.
 * When Redis does not answer within REDIS_COMMAND_TIMEOUT_MS, or the connection is down (then
 * at once: the offline queue is off), the decision is made by the insurance limiter: the limit
 * holds per process, never opens up. The first such decision after a shared one, and the first
 * shared one after a fallback, are each logged once and change the
 * `envelope_shared_limits_fallback` gauge (FallbackState).
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

/** Whether decisions are fleet-wide or per process, with one log line and metric per change. */
export class FallbackState {
  private fallingBack = false;

  constructor(
    private readonly logger: Logger,
    private readonly onChange: (fallingBack: boolean) => void = () => {},
    /** Each decision made per process while Redis was configured (a counter). */
    private readonly onLocalDecision: (limit: string) => void = () => {},
  ) {}

  get active(): boolean {
    return this.fallingBack;
  }

  /** A decision of `limit` was made per process: Redis failed or was not ready. */
  local(limit: string, error?: unknown): void {
    this.onLocalDecision(limit);
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

  constructor(
    readonly spec: WindowSpec,
    private readonly store: { redis: Redis; keyPrefix: string; state: FallbackState } | undefined,
  ) {
    const options = { points: spec.points, duration: Math.max(1, Math.ceil(spec.durationMs / 1000)) };
    this.limiter = store
      ? new RateLimiterRedis({
          ...options,
          storeClient: store.redis,
          keyPrefix: `${store.keyPrefix}${spec.name}`,
          rejectIfRedisNotReady: true,
          insuranceLimiter: new InsuranceLimiter({ ...options, keyPrefix: spec.name }),
        })
      : new RateLimiterMemory({ ...options, keyPrefix: spec.name });
  }

  async consume(key: string, points = 1): Promise<WindowDecision> {
    const options: CallOptions = {};
    let result: RateLimiterRes;
    let allowed = true;
    try {
      result = await this.limiter.consume(key, points, options as Record<string, unknown>);
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      result = error;
      allowed = false;
    }
    if (this.store) {
      if (options[INSURED]) this.store.state.local(this.spec.name);
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
