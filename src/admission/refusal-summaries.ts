/**
 * Refusals for memory (429 TooMuchBuffered or BufferFull, 503 Overloaded) come in floods, so
 * they are audited like failed authentications: the first of each code per principal and window
 * as the request's own event, the rest counted into one RefusalsSummarized event per principal
 * and window (summarized-windows.ts). Keyed by principalKey, the key every per-principal limit uses.
 */
import type { FastifyRequest } from 'fastify';
import type { RefusalsSummaryDetails, UserIdentity } from '../audit/event.js';
import { principalKey } from '../authz/principal-key.js';
import type { AuditSink } from '../audit/sink.js';
import { SummarizedWindows, type WindowSummary } from './summarized-windows.js';

export interface RefusalSummariesOptions {
  windowMs: number;
  audit: Pick<AuditSink, 'summarizeRefusals'>;
  onWritten?: () => void;
  onSummaryError: (error: unknown, details: RefusalsSummaryDetails) => void;
  now?: () => number;
}

export class RefusalSummaries {
  private readonly windows: SummarizedWindows;

  constructor(options: RefusalSummariesOptions) {
    this.windows = new SummarizedWindows({
      windowMs: options.windowMs,
      ...(options.now ? { now: options.now } : {}),
      writeSummary: async (summary) => {
        await options.audit.summarizeRefusals(detailsOf(summary));
        options.onWritten?.();
      },
      onSummaryError: (error, summary) => options.onSummaryError(error, detailsOf(summary)),
    });
  }

  /**
   * Counts a refusal of the request's principal with `code`. Unless it is the first of its code
   * in the window, the request's own audit event is dropped (it is counted in the summary).
   */
  note(request: FastifyRequest, code: string): void {
    if (!request.principal) return;
    const recorded = this.windows.record(principalKey(request.principal), code);
    if (!recorded.audit) request.audit = undefined;
  }

  flush(): Promise<void> {
    return this.windows.flush();
  }
}

function detailsOf(summary: WindowSummary): RefusalsSummaryDetails {
  // principalKey is `method:id`, and no method has a colon.
  const colon = summary.source.indexOf(':');
  return {
    principalType: summary.source.slice(0, colon) as UserIdentity['type'],
    principalId: summary.source.slice(colon + 1),
    windowStart: new Date(summary.windowStart).toISOString(),
    windowEnd: new Date(summary.windowEnd).toISOString(),
    summarizedRefusals: summary.summarized,
    byCode: summary.byKind,
    refusalsInWindow: summary.inWindow,
  };
}
