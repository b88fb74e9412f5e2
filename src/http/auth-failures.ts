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
 * The table holds at most MAX_SOURCES addresses (least recently failing evicted, its summary
 * written then), so a spoofed-address flood cannot grow memory without bound.
 */
import { LRUCache } from 'lru-cache';
import type { AuthFailuresSummaryDetails } from '../audit/event.js';

export const TOO_MANY_FAILURES = 'too_many_failures';
const MAX_SOURCES = 10_000;

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

interface SourceWindow {
  start: number;
  failures: number;
  audited: Set<string>;
  summarized: Map<string, number>;
  timer: NodeJS.Timeout | undefined;
}

export class AuthFailureTracker {
  private readonly now: () => number;
  private readonly sources: LRUCache<string, SourceWindow>;

  constructor(private readonly options: AuthFailureOptions) {
    this.now = options.now ?? Date.now;
    this.sources = new LRUCache<string, SourceWindow>({
      max: MAX_SOURCES,
      dispose: (window, source, reason) => {
        if (reason === 'evict') this.summarize(source, window);
      },
    });
  }

  record(source: string, reason: string): AuthFailureVerdict {
    const now = this.now();
    let window = this.sources.get(source);
    if (window && now >= window.start + this.options.windowMs) {
      this.close(source, window);
      window = undefined;
    }
    if (!window) {
      window = { start: now, failures: 0, audited: new Set(), summarized: new Map(), timer: undefined };
      this.sources.set(source, window);
    }
    window.failures += 1;
    const limited = window.failures > this.options.maxFailures;
    const kind = limited ? TOO_MANY_FAILURES : reason;
    const retryAfterSeconds = limited ? Math.max(1, Math.ceil((window.start + this.options.windowMs - now) / 1000)) : undefined;
    const verdict: AuthFailureVerdict = { kind, audit: !window.audited.has(kind), ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) };
    if (verdict.audit) {
      window.audited.add(kind);
    } else {
      window.summarized.set(kind, (window.summarized.get(kind) ?? 0) + 1);
      if (!window.timer) {
        const closing = window;
        window.timer = setTimeout(() => this.close(source, closing), window.start + this.options.windowMs - now);
        window.timer.unref();
      }
    }
    return verdict;
  }

  /** Writes every pending summary now (at shutdown), and forgets every window. */
  async flush(): Promise<void> {
    const pending = [...this.sources.entries()];
    this.sources.clear();
    await Promise.all(pending.map(([source, window]) => this.summarize(source, window)));
  }

  private close(source: string, window: SourceWindow): void {
    if (this.sources.peek(source) === window) this.sources.delete(source);
    void this.summarize(source, window);
  }

  private async summarize(source: string, window: SourceWindow): Promise<void> {
    clearTimeout(window.timer);
    window.timer = undefined;
    if (window.summarized.size === 0) return;
    let summarizedFailures = 0;
    const byReason: Record<string, number> = {};
    for (const [kind, count] of window.summarized) {
      byReason[kind] = count;
      summarizedFailures += count;
    }
    window.summarized.clear();
    const details: AuthFailuresSummaryDetails = {
      sourceIPAddress: source,
      windowStart: new Date(window.start).toISOString(),
      windowEnd: new Date(Math.min(this.now(), window.start + this.options.windowMs)).toISOString(),
      summarizedFailures,
      byReason,
      failuresInWindow: window.failures,
    };
    try {
      await this.options.writeSummary(details);
    } catch (error) {
      this.options.onSummaryError(error, details);
    }
  }
}
