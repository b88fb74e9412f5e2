/**
 * The second audit event of a stream (`stream.phase: ended`), written by the audit trail once
 * the stream is over, whatever ended it. On success it is written before the last bytes are
 * released (the session awaits it), so a clean end always has its record; if it cannot be
 * written, the response ends abnormally. After the 200, any failure destroys the socket: the
 * client sees an incomplete chunked response, never a clean end (README, "Streams").
 */
import type { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuditEventInput, StreamAuditDetails } from '../../audit/event.js';
import type { AuditFacts } from '../../operations/operation.js';
import type { StreamProgress, StreamSession } from '../../operations/stream.js';
import { toAuditEvent } from '../audit-event.js';
import { SpoolBuffer, SpoolQuotaError } from './stream-spool.js';
import type { Span } from '@opentelemetry/api';
import { ATTR, markFailed, startSpan, withSpan } from '../../telemetry/spans.js';

export type StreamOutcome = NonNullable<StreamAuditDetails['outcome']>;

/** The client went away before the response finished. */
export class ClientGoneError extends Error {
  override readonly name = 'ClientGoneError';
}

/** No byte in either direction for STREAM_IDLE_TIMEOUT_MS. */
export class StreamIdleTimeoutError extends Error {
  override readonly name = 'StreamIdleTimeoutError';
}

/** How the audit trail writes an event and counts an outcome. */
export interface StreamEventWriter {
  write(event: AuditEventInput): Promise<void>;
  /** Counts the outcome; `elapsedMs` since the request arrived. */
  ended(outcome: StreamOutcome, elapsedMs: number): void;
}

export class StreamAudit {
  /** What the route sends: the audit trail writes `started` only when it is this. */
  body: Readable | undefined;
  private reply: FastifyReply | undefined;
  private writer: StreamEventWriter | undefined;
  private ended = false;
  /** A failure before the started event was written: recorded right after it. */
  private earlyFailure: { error: unknown } | undefined;
  private resolveStarted!: () => void;
  private rejectStarted!: (error: Error) => void;
  private readonly startedWritten = new Promise<void>((resolve, reject) => {
    this.resolveStarted = resolve;
    this.rejectStarted = reject;
  });

  /** One span for the whole stream (not one per segment), ended with its outcome and counts. */
  private readonly span: Span;

  constructor(
    private readonly request: FastifyRequest,
    private readonly session: StreamSession,
    private readonly facts: AuditFacts,
  ) {
    this.span = startSpan('stream', { [ATTR.streamDirection]: session.direction });
    this.startedWritten.catch(() => undefined);
    session.beforeEnd((progress) => this.completed(progress));
  }

  /** The response body and the ways the stream can end without completing. */
  watch(reply: FastifyReply, body: Readable): void {
    this.body = body;
    // A spool between the session and the client: the stream completes when the spool's last
    // bytes go, not when the session's do (they may still be on disk).
    if (body instanceof SpoolBuffer) {
      this.session.beforeEnd(async () => undefined);
      body.holdEnd(() => this.completed({ ...this.session.progress }));
    }
    this.reply = reply;
    body.once('error', (error) => this.failed(error));
    // The client went away before the response finished: stop reading, stop working.
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) {
        this.failed(new ClientGoneError());
        body.destroy();
        this.session.output.destroy();
      }
    });
  }

  /** The audit trail wrote the started event. */
  started(writer: StreamEventWriter): void {
    this.writer = writer;
    this.resolveStarted();
    if (this.earlyFailure) this.failed(this.earlyFailure.error);
  }

  /** The audit trail answered 503 instead: nothing was sent, nothing is read any further. */
  abandon(): void {
    this.ended = true;
    this.span.setAttribute(ATTR.streamOutcome, 'not-started');
    this.span.end();
    this.rejectStarted(new Error('the started event was not written'));
    this.session.output.destroy();
    this.body?.destroy();
  }

  /** The last bytes are ready: record the outcome, then let them go (a rejection ends the response abnormally). */
  private async completed(progress: StreamProgress): Promise<void> {
    await this.startedWritten;
    if (this.ended) throw new Error('the stream has already ended');
    this.ended = true;
    await this.write({ phase: 'ended', outcome: 'completed', ...progress }, progress);
  }

  failed(error: unknown): void {
    if (this.ended) return;
    if (!this.writer) {
      this.earlyFailure ??= { error };
      return;
    }
    this.ended = true;
    const progress = { ...this.session.progress };
    const end = this.endOf(error);
    const details: StreamAuditDetails = { phase: 'ended', outcome: end.outcome, ...progress };
    if (end.failedSegment !== undefined) details.failedSegment = end.failedSegment;
    this.write(details, progress).catch((writeError: unknown) => {
      this.request.log.error({ errorName: (writeError as Error).name }, 'audit event for the end of a stream could not be written');
    });
    // After the 200 the only honest signal left: no chunked terminator, the connection closed.
    if (this.reply) this.reply.raw.destroy();
    else this.request.raw.socket?.destroy();
  }

  private endOf(error: unknown): Pick<StreamAuditDetails, 'outcome' | 'failedSegment'> {
    const fromBytes = this.session.endOf(error);
    if (fromBytes) return fromBytes;
    if (error instanceof StreamIdleTimeoutError) return { outcome: 'timeout' };
    if (error instanceof SpoolQuotaError) return { outcome: 'spool-quota' };
    if (error instanceof ClientGoneError || this.request.raw.destroyed || (error as NodeJS.ErrnoException)?.code === 'ECONNRESET') return { outcome: 'aborted-by-client' };
    return { outcome: 'failed' };
  }

  private async write(details: StreamAuditDetails, progress: StreamProgress): Promise<void> {
    const sizes =
      this.session.direction === 'encrypt'
        ? { requestParameters: { ...this.facts.requestParameters, plaintextBytes: progress.bytesIn }, responseElements: { ...this.facts.responseElements, ciphertextBytes: progress.bytesOut } }
        : { requestParameters: { ...this.facts.requestParameters, ciphertextBytes: progress.bytesIn }, responseElements: { ...this.facts.responseElements, plaintextBytes: progress.bytesOut } };
    const event = toAuditEvent(this.request, 200, { facts: { ...this.facts, ...sizes, stream: details } });
    const writer = this.writer as StreamEventWriter;
    writer.ended(details.outcome as StreamOutcome, this.reply?.elapsedTime ?? 0);
    this.span.setAttributes({
      [ATTR.streamOutcome]: details.outcome,
      [ATTR.streamSegments]: details.segments,
      [ATTR.streamFailedSegment]: details.failedSegment,
      [ATTR.streamBytesIn]: details.bytesIn,
      [ATTR.streamBytesOut]: details.bytesOut,
    });
    if (details.outcome !== 'completed') markFailed(this.span, { code: details.outcome });
    try {
      // The ended event's audit write, under the stream's span.
      await withSpan(this.span, () => writer.write(event));
    } finally {
      this.span.end();
    }
  }
}
