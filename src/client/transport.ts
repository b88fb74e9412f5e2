/**
 * The fetch behind every JSON and binary operation (openapi-fetch calls it with a Request):
 * a timeout per attempt, the caller's AbortSignal, and the retries of retry.ts. The body is
 * read once so that each attempt can send it again.
 */
import { parseRetryAfter } from './errors.js';
import { isRepeatable, isRetryableStatus, retryDelayMs, sleep } from './retry.js';
import type { ResolvedOptions } from './options.js';

export type Fetch = (request: Request) => Promise<Response>;

export function retryingFetch(options: ResolvedOptions): Fetch {
  return async (request) => {
    const operation = `${request.method} ${new URL(request.url).pathname}`;
    const body = request.body === null ? undefined : await request.arrayBuffer();
    const caller = request.signal;
    for (let attempt = 1; ; attempt++) {
      const timeout = AbortSignal.timeout(options.timeoutMs);
      let response: Response;
      try {
        response = await fetch(request.url, {
          method: request.method,
          headers: request.headers,
          ...(body === undefined ? {} : { body }),
          signal: AbortSignal.any([caller, timeout]),
        });
      } catch (error) {
        // The caller's abort is final; otherwise the outcome is unknown: repeat only what is safe to.
        if (caller.aborted) throw caller.reason;
        const delay = isRepeatable(operation) ? retryDelayMs(options.retry, attempt, undefined) : undefined;
        if (delay === undefined) throw timeout.aborted ? timeoutError(operation, options.timeoutMs, error) : error;
        await sleep(delay, caller);
        continue;
      }
      if (!isRetryableStatus(response.status)) return response;
      const delay = retryDelayMs(options.retry, attempt, parseRetryAfter(response.headers.get('retry-after')));
      if (delay === undefined) return response;
      await response.body?.cancel().catch(() => undefined);
      await sleep(delay, caller);
    }
  };
}

export class ClientTimeoutError extends Error {
  override readonly name = 'ClientTimeoutError';
}

function timeoutError(operation: string, ms: number, cause: unknown): ClientTimeoutError {
  return new ClientTimeoutError(`${operation}: no answer within ${ms} ms`, { cause });
}
