/**
 * A store for @fastify/rate-limit that counts in a WindowLimiter (shared-limits.ts): with
 * REDIS_URL the per-principal rate limit holds for the whole fleet, and falls back to a
 * per-process count of the same size when Redis does not answer. Without Redis the plugin
 * keeps its own memory store, and this is not used.
 */
import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import type { WindowLimiter } from './shared-limits.js';

export function sharedRateLimitStore(limiter: WindowLimiter): FastifyRateLimitStoreCtor {
  return class SharedRateLimitStore implements FastifyRateLimitStore {
    incr(key: string, callback: (error: Error | null, result?: { current: number; ttl: number }) => void): void {
      limiter.consume(key).then(
        (decision) => callback(null, { current: decision.consumed, ttl: decision.msBeforeNext }),
        (error: Error) => callback(error),
      );
    }

    child(): FastifyRateLimitStore {
      return this;
    }
  };
}
