/**
 * Failed authentications per client address, in fixed windows of AUTH_FAILURE_WINDOW_MS that
 * start at a source's first failure. Two jobs, both decided before any body is read:
 *
 * - Limit: past AUTH_FAILURE_MAX failures in its window an address gets 429 + Retry-After
 *   instead of 401. Only failures count: a caller with a valid token is served whatever its
 *   neighbours behind the same address do.
 * - Bound the audit volume: the first failure of each kind (reason, or `too_many_failures` for
 *   the 429s) per source and window is written as its own event; the rest are
 *   counted and written as ONE AuthFailuresSummarized event per source and window, when the
 *   window closes, when the source is evicted from the table, or at close: no count is lost.
 *
 * The windows and summaries are summarized-windows.ts's (at most 10,000 addresses, least
 * recently failing evicted, its summary written then), so a spoofed-address flood cannot grow
 * memory without bound.
 */
import type { AuthFailuresSummaryDetails } from '../audit/event.js';
import { SummarizedWindows, type WindowSummary } from './summarized-windows.js';

export const TOO_MANY_FAILURES = 'too_many_failures';

export interface AuthFailureVerdict {
  /** The kind this failure is recorded as: its reason, or `too_many_failures` when limited. */
  kind: string;
  /** Write this request's own audit event (the first of its kind in the window). */
  audit: boolean;
  /** Set when the address is over its limit: answer 429 with this Retry-After. */
  retryAfterSeconds?: number;
}

export interface AuthFailureOptions {
  maxFailures: number;
  windowMs: number;
  /** Writes a summary; a rejection is reported through onSummaryError. */
  writeSummary: (details: AuthFailuresSummaryDetails) => Promise<void>;
  onSummaryError: (error: unknown, details: AuthFailuresSummaryDetails) => void;
  now?: () => number;
}

export class AuthFailureTracker {
  private readonly now: () => number;
  private readonly windows: SummarizedWindows;

  constructor(private readonly options: AuthFailureOptions) {
    this.now = options.now ?? Date.now;
    this.windows = new SummarizedWindows({
      windowMs: options.windowMs,
      now: this.now,
      writeSummary: (summary) => options.writeSummary(detailsOf(summary)),
      onSummaryError: (error, summary) => options.onSummaryError(error, detailsOf(summary)),
    });
  }

  /**
   * Counts one failure of `source`. `fleetLimitedForMs`, when set, says the fleet-wide count
   * (shared-limits.ts, REDIS_URL) is over the limit for that long: the address is limited here
   * too, whatever this replica alone has seen. The audit windows stay per replica.
   */
  record(source: string, reason: string, fleetLimitedForMs?: number): AuthFailureVerdict {
    const limited = (failures: number) => failures > this.options.maxFailures || fleetLimitedForMs !== undefined;
    const recorded = this.windows.record(source, (failures) => (limited(failures) ? TOO_MANY_FAILURES : reason));
    if (recorded.kind !== TOO_MANY_FAILURES) return { kind: recorded.kind, audit: recorded.audit };
    const localMs = recorded.inWindow > this.options.maxFailures ? recorded.windowStart + this.options.windowMs - this.now() : 0;
    const retryAfterSeconds = Math.max(1, Math.ceil(Math.max(localMs, fleetLimitedForMs ?? 0) / 1000));
    return { kind: recorded.kind, audit: recorded.audit, retryAfterSeconds };
  }

  /** Writes every pending summary now (at shutdown), and forgets every window. */
  flush(): Promise<void> {
    return this.windows.flush();
  }
}

function detailsOf(summary: WindowSummary): AuthFailuresSummaryDetails {
  return {
    sourceIPAddress: summary.source,
    windowStart: new Date(summary.windowStart).toISOString(),
    windowEnd: new Date(summary.windowEnd).toISOString(),
    summarizedFailures: summary.summarized,
    byReason: summary.byKind,
    failuresInWindow: summary.inWindow,
  };
}
