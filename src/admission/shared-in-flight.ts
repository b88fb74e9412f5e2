/**
 * The in-flight cap for the whole fleet (REDIS_URL): per principal, a Redis sorted set of
 * leases, one per request in progress on any replica, scored by when it lapses. A request
 * takes a lease if the principal holds fewer than MAX_IN_FLIGHT_PER_PRINCIPAL live ones, and
 * gives it back when its response closes. Each replica renews its own leases every third of
 * REDIS_IN_FLIGHT_LEASE_MS, so a long request (a stream) keeps its place, and a replica that
 * dies without giving its places back holds them at most one lease time longer.
 *
 * rate-limiter-flexible has no semaphore (its counters expire as a whole window, which would
 * free every place of a principal at once, live ones included), so this is three short Lua
 * scripts, each one atomic step on one key. Time comes from the Redis server (TIME), so the
 * replicas' clocks need not agree.
 *
 * Redis slow or down: the acquire fails within REDIS_COMMAND_TIMEOUT_MS and the request is
 * admitted on the per-process cap alone (in-flight-limit.ts checks it first either way), with
 * the fallback noted (shared-limits.ts). A lease not given back because Redis was down lapses.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from '../fleet/redis.js';
import type { FallbackState } from './shared-limits.js';

const NOW_MS = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/** KEYS[1] the principal's leases; ARGV member, max, leaseMs. 1: taken, 0: the principal is at its cap. */
const ACQUIRE = `${NOW_MS}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`;

/** KEYS[1] the principal's leases; ARGV leaseMs, then the members to renew (only those still there). */
const RENEW = `${NOW_MS}
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i]) end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 0`;

export interface SharedInFlightOptions {
  max: number;
  leaseMs: number;
  keyPrefix: string;
}

/** A place taken in Redis: give it back when the response closes. */
export interface SharedPlace {
  release(): void;
}

export class SharedInFlight {
  /** This replica's live leases: member -> the principal's Redis key. */
  private readonly held = new Map<string, string>();
  private readonly renewal: NodeJS.Timeout;

  constructor(
    private readonly redis: Redis,
    private readonly state: FallbackState,
    private readonly options: SharedInFlightOptions,
  ) {
    this.renewal = setInterval(() => this.renew(), Math.max(100, Math.floor(options.leaseMs / 3)));
    this.renewal.unref();
  }

  /**
   * Takes a place for one request of `principal`: a SharedPlace, or 'full' when the fleet holds
   * the principal's cap, or 'local' when Redis did not answer (the per-process cap decides).
   */
  async acquire(principal: string): Promise<SharedPlace | 'full' | 'local'> {
    const key = `${this.options.keyPrefix}inflight:${principal}`;
    if (!this.state.tryRedis()) {
      this.state.skipped('inFlight');
      return 'local';
    }
    const member = randomUUID();
    let taken: unknown;
    try {
      taken = await this.redis.eval(ACQUIRE, 1, key, member, this.options.max, this.options.leaseMs);
    } catch (error) {
      this.state.local('inFlight', error);
      return 'local';
    }
    this.state.shared();
    if (taken !== 1) return 'full';
    this.held.set(member, key);
    return {
      release: () => {
        if (!this.held.delete(member)) return;
        // Not awaited: a failed release lapses with its lease.
        this.redis.zrem(key, member).catch(() => {});
      },
    };
  }

  /** Leases held by this replica (a gauge). */
  get heldCount(): number {
    return this.held.size;
  }

  stop(): void {
    clearInterval(this.renewal);
  }

  private renew(): void {
    if (this.held.size === 0 || this.redis.status !== 'ready') return;
    const byKey = new Map<string, string[]>();
    for (const [member, key] of this.held) {
      const members = byKey.get(key);
      if (members) members.push(member);
      else byKey.set(key, [member]);
    }
    const pipeline = this.redis.pipeline();
    for (const [key, members] of byKey) pipeline.eval(RENEW, 1, key, this.options.leaseMs, ...members);
    // A failed renewal is retried at the next tick; a lease that lapses meanwhile only frees a place early.
    pipeline.exec().catch(() => {});
  }
}
