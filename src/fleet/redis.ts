/**
 * The one way the service connects to Redis (shared limits, fleet messages). Redis is never on
 * the path of a key: it holds counters keyed by principalKey, nothing else.
 *
 * Bounded in time everywhere, because callers fall back to per-process behaviour on an error:
 * a connect attempt gives up after `connectTimeoutMs`, a command after `commandTimeoutMs`, and
 * with the offline queue off a command sent while disconnected fails at once instead of
 * waiting for a reconnect. Reconnects go on in the background (capped backoff), for ever.
 * Each connection state change is logged once, with the server's host and port only (the URL
 * may carry a password).
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';

export type { Redis } from 'ioredis';

export interface RedisOptions {
  /** A command without an answer after this long fails (default 250 ms). */
  commandTimeoutMs?: number;
  /** A connection attempt without a ready server after this long fails (default 2 s). */
  connectTimeoutMs?: number;
  /** Called on each state change: true once ready, false when the connection is lost. */
  onState?: (ready: boolean) => void;
}

export function createRedis(url: string, logger: Logger, options: RedisOptions = {}): Redis {
  const client = new Redis(url, {
    lazyConnect: false,
    enableOfflineQueue: false,
    commandTimeout: options.commandTimeoutMs ?? 250,
    connectTimeout: options.connectTimeoutMs ?? 2_000,
    // Fail a command when its connection drops instead of resending it after a reconnect: the
    // caller has fallen back already, and a resent increment would count twice.
    maxRetriesPerRequest: 0,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  });
  const where = { redisHost: client.options.host, redisPort: client.options.port };
  let ready: boolean | undefined;
  const change = (now: boolean, error?: Error) => {
    if (ready === now) return;
    const first = ready === undefined;
    ready = now;
    options.onState?.(now);
    if (now) logger.info(where, 'Redis connected');
    else if (!first || error) logger.warn({ ...where, errorName: error?.name, errorMessage: error?.message }, 'Redis connection lost: limits fall back to per-process');
  };
  let lastError: Error | undefined;
  client.on('ready', () => change(true));
  client.on('error', (error: Error) => {
    lastError = error;
    if (client.status !== 'ready') change(false, error);
  });
  client.on('close', () => change(false, lastError));
  return client;
}
