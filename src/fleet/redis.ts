/**
 * The one Redis client factory of the fleet features (shared limits, fleet admin actions).
 * Every wait is bounded, so a slow or absent Redis costs a request a known time and never
 * hangs it: a short connect and command timeout, no offline queue (a command while
 * disconnected fails at once instead of waiting for a reconnect), and few retries per
 * command. Reconnection goes on in the background with a capped backoff. A subscriber needs
 * its own connection: `client.duplicate()`.
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';

const CONNECT_TIMEOUT_MS = 1_000;
const COMMAND_TIMEOUT_MS = 500;
const MAX_RECONNECT_DELAY_MS = 2_000;

export function createRedis(url: string, logger: Logger): Redis {
  const client = new Redis(url, {
    connectTimeout: CONNECT_TIMEOUT_MS,
    commandTimeout: COMMAND_TIMEOUT_MS,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(attempt * 100, MAX_RECONNECT_DELAY_MS),
    lazyConnect: false,
  });
  let down = false;
  // One line per transition, not one per failed reconnect attempt.
  client.on('error', (error: Error) => {
    if (down) return;
    down = true;
    logger.warn({ redis: redactedUrl(url), errorName: error.name, errorMessage: error.message }, 'Redis unreachable: fleet features degrade to this replica');
  });
  client.on('ready', () => {
    if (down) logger.info({ redis: redactedUrl(url) }, 'Redis reachable again');
    down = false;
  });
  return client;
}

/** The URL without its password (`redis://user:secret@host` -> `redis://user:***@host`). */
export function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'redis://(unparseable)';
  }
}
