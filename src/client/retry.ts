/**
 * When to retry, and how long to wait. Retried:
 *
 * - 429 and 503, for every operation: the service refused before producing a result (rate,
 *   in-flight, buffer or KMS budget; overload, KMS or audit unavailable), so a retry cannot do
 *   anything twice that a caller could observe. (A 503 from a failed audit write may follow a
 *   KMS call; the result was never released, so the retry is still the only result.)
 * - a network failure or timeout whose outcome is unknown, only for operations that are safe to
 *   repeat: decrypt, unwrap, the listings. Never for encrypt, rewrap or datakey (a retry that
 *   succeeds after a first attempt that also did would make a second ciphertext or data key:
 *   harmless, but not what the caller asked), and never for a stream whose bytes were sent (a
 *   Readable cannot be replayed).
 *
 * The wait honours Retry-After (at least that long, plus jitter); without one it is full-jitter
 * exponential backoff. A Retry-After beyond `maxDelayMs` ends the retries: the caller decides.
 */

export interface RetryOptions {
  /** Attempts in all, the first included (1: never retry). Default 4. */
  maxAttempts?: number;
  /** The first backoff's ceiling. Default 100 ms. */
  baseDelayMs?: number;
  /** No wait is longer; a Retry-After above it is not waited for. Default 10 s. */
  maxDelayMs?: number;
}

export const DEFAULT_RETRY: Required<RetryOptions> = { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 10_000 };

/** Operations that may be repeated when the outcome of an attempt is unknown (method + path). */
const REPEATABLE = new Set([
  'POST /v1/decrypt',
  'POST /v1/decrypt/batch',
  'POST /v1/decrypt/binary',
  'POST /v1/unwrap',
  'GET /v1/keys',
  'GET /v1/admin/cache',
  'GET /v1/admin/kms',
  'GET /v1/admin/policy',
  'POST /v1/admin/cache/evict',
  'GET /healthz',
  'GET /readyz',
]);

export function isRepeatable(operation: string): boolean {
  return REPEATABLE.has(operation);
}

export function isRetryableStatus(status: number): boolean {
  return status === 429 || status === 503;
}

/**
 * How long to wait before attempt `attempt + 1` (attempt counts from 1), or undefined to stop.
 * `random` is injectable so tests can pin the jitter.
 */
export function retryDelayMs(options: Required<RetryOptions>, attempt: number, retryAfterSeconds: number | undefined, random = Math.random): number | undefined {
  if (attempt >= options.maxAttempts) return undefined;
  const backoff = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1));
  if (retryAfterSeconds !== undefined) {
    const asked = retryAfterSeconds * 1000;
    if (asked > options.maxDelayMs) return undefined;
    return Math.min(options.maxDelayMs, asked + random() * options.baseDelayMs);
  }
  return random() * backoff;
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
