/**
 * Bounds the audit volume of repeated refusals: per source (an address, a principal) and fixed
 * window (starting at the source's first refusal), the first refusal of each kind is written as
 * its own event, and the rest are counted and written as ONE summary per source and window,
 * when the window closes, when the source is evicted from the table, or at close (flush): no
 * count is lost. Used for failed authentications (auth-failures.ts) and for refusals for memory
 * (request-buffer-budget.ts, load-shedding.ts).
 *
 * The table holds at most `maxSources` sources (least recently refused evicted, its summary
 * written then), so a flood of sources cannot grow memory without bound.
 */
import { LRUCache } from 'lru-cache';

const DEFAULT_MAX_SOURCES = 10_000;

/** One source's window, as handed to `writeSummary`. */
export interface WindowSummary {
  source: string;
  windowStart: number;
  windowEnd: number;
  /** Refusals not written as their own event, per kind. */
  byKind: Record<string, number>;
  /** The sum of byKind. */
  summarized: number;
  /** Every refusal of the source in the window, the individually written ones included. */
  inWindow: number;
}

export interface SummarizedWindowsOptions {
  windowMs: number;
  maxSources?: number;
  /** Writes a summary; a rejection is reported through onSummaryError. */
  writeSummary: (summary: WindowSummary) => Promise<void>;
  onSummaryError: (error: unknown, summary: WindowSummary) => void;
  now?: () => number;
}

export interface Recorded {
  /** The kind this refusal is recorded as. */
  kind: string;
  /** Write this request's own audit event (the first of its kind in the window). */
  audit: boolean;
  /** The window's start, and the refusals in it so far, this one included. */
  windowStart: number;
  inWindow: number;
}

interface SourceWindow {
  start: number;
  count: number;
  audited: Set<string>;
  summarized: Map<string, number>;
  timer: NodeJS.Timeout | undefined;
}

export class SummarizedWindows {
  private readonly now: () => number;
  private readonly sources: LRUCache<string, SourceWindow>;

  constructor(private readonly options: SummarizedWindowsOptions) {
    this.now = options.now ?? Date.now;
    this.sources = new LRUCache<string, SourceWindow>({
      max: options.maxSources ?? DEFAULT_MAX_SOURCES,
      dispose: (window, source, reason) => {
        if (reason === 'evict') void this.summarize(source, window);
      },
    });
  }

  /**
   * Counts one refusal of `source`. `kindOf` gets the refusals in the window with this one, so
   * a limit can change the kind (auth-failures.ts: `too_many_failures`).
   */
  record(source: string, kindOf: string | ((inWindow: number) => string)): Recorded {
    const now = this.now();
    let window = this.sources.get(source);
    if (window && now >= window.start + this.options.windowMs) {
      this.close(source, window);
      window = undefined;
    }
    if (!window) {
      window = { start: now, count: 0, audited: new Set(), summarized: new Map(), timer: undefined };
      this.sources.set(source, window);
    }
    window.count += 1;
    const kind = typeof kindOf === 'string' ? kindOf : kindOf(window.count);
    const audit = !window.audited.has(kind);
    if (audit) {
      window.audited.add(kind);
    } else {
      window.summarized.set(kind, (window.summarized.get(kind) ?? 0) + 1);
      if (!window.timer) {
        const closing = window;
        window.timer = setTimeout(() => this.close(source, closing), window.start + this.options.windowMs - now);
        window.timer.unref();
      }
    }
    return { kind, audit, windowStart: window.start, inWindow: window.count };
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
    let summarized = 0;
    const byKind: Record<string, number> = {};
    for (const [kind, count] of window.summarized) {
      byKind[kind] = count;
      summarized += count;
    }
    window.summarized.clear();
    const summary: WindowSummary = {
      source,
      windowStart: window.start,
      windowEnd: Math.min(this.now(), window.start + this.options.windowMs),
      byKind,
      summarized,
      inWindow: window.count,
    };
    try {
      await this.options.writeSummary(summary);
    } catch (error) {
      this.options.onSummaryError(error, summary);
    }
  }
}
