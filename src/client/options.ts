/** The client's options, resolved once. */
import { DEFAULT_RETRY, type RetryOptions } from './retry.js';

export interface ClientOptions {
  /** The service, e.g. `https://envelope.internal:8080`. */
  baseUrl: string;
  /** The bearer token. Keep it out of argv and logs (the command reads ENVELOPE_TOKEN or a file). */
  token: string;
  /**
   * Per attempt, for the JSON and binary operations: the whole exchange. For streams: the
   * longest silence (no byte either way), as the service's STREAM_IDLE_TIMEOUT_MS. Default 30 s.
   */
  timeoutMs?: number;
  retry?: RetryOptions;
  /** Sent as `user-agent`, e.g. the calling service's name. */
  userAgent?: string;
  /** Sent as `x-request-id` on every request: the service logs it beside its own (callerRequestId). */
  requestId?: () => string;
}

export interface ResolvedOptions {
  baseUrl: URL;
  token: string;
  timeoutMs: number;
  retry: Required<RetryOptions>;
  userAgent: string;
  requestId: (() => string) | undefined;
}

export const CLIENT_USER_AGENT = 'envelope-client';

export function resolveOptions(options: ClientOptions): ResolvedOptions {
  const baseUrl = new URL(options.baseUrl);
  if (baseUrl.protocol !== 'http:' && baseUrl.protocol !== 'https:') throw new TypeError(`baseUrl must be http: or https:, not ${baseUrl.protocol}`);
  if (!options.token) throw new TypeError('a bearer token is required');
  return {
    baseUrl,
    token: options.token,
    timeoutMs: options.timeoutMs ?? 30_000,
    retry: { ...DEFAULT_RETRY, ...options.retry },
    userAgent: options.userAgent ?? CLIENT_USER_AGENT,
    requestId: options.requestId,
  };
}

/** Headers every request carries. */
export function baseHeaders(options: ResolvedOptions): Record<string, string> {
  return {
    authorization: `Bearer ${options.token}`,
    'user-agent': options.userAgent,
    ...(options.requestId ? { 'x-request-id': options.requestId() } : {}),
  };
}
