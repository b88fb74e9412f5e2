/**
 * The audit log: a dedicated pino logger (never the app logger, so LOG_LEVEL, app-log
 * redaction and app-log transports cannot affect it) writing one hash-chained JSON line per
 * event to AUDIT_LOG.
 *
 * write() resolves once the line is in the file and rejects with AuditWriteError when it is
 * not: the HTTP layer awaits it before sending a response and answers 503 if it rejects
 * (fail closed).
 *
 * Group commit: lines are chained and queued synchronously, in call order, and every line
 * queued during one turn of the event loop is written by a single synchronous write(2) in the
 * next `setImmediate` (or at once when a turn queues MAX_BATCH_BYTES). Under load that turns
 * one system call per request into one per turn, and it delays no answer by more than the
 * rest of the current turn: nothing is sent before its line is written either way. If the
 * write fails, none of the batch's lines is left in the file, the chain is rewound to where
 * the batch began, and every request in the batch gets the error.
 *
 * Rotation: before each batch is written, the file is checked to still be the one at the
 * AUDIT_LOG path (one stat(2) per batch, so at most one per event-loop turn, next to the
 * write(2) it guards). If it was renamed or deleted (logrotate), the file now at the path is
 * opened (or created) and the batch goes there, followed by an AuditLogReopened event: the new
 * file's first line continues the previous file's chain, and nothing is ever written to a
 * file that is no longer at the path. reopen() (SIGUSR2) and isWritable() (readiness) do the
 * same check, so a rotated log is followed even while no request arrives.
 */
import { randomUUID } from 'node:crypto';
import { pino, type DestinationStream, type Logger } from 'pino';
import { GENESIS_HASH, HashChain, type ChainHead, type ChainLink } from './chain.js';
import { AuditWriteError } from './errors.js';
import {
  AUDIT_EVENT_SOURCE,
  AUDIT_EVENT_VERSION,
  type AuditEventInput,
  type AuthFailuresSummaryDetails,
  type ChainResumedDetails,
  type FleetActionDetails,
  type LogReopenedDetails,
  type RefusalsSummaryDetails,
  type ServiceEventName,
  type SinkRecoveredDetails,
} from './event.js';
import type { CheckpointDetails } from './checkpoint.js';
import { censorSecretFields } from './redaction.js';
import { openDestination, openReplacement } from './open-destination.js';
import type { SyncLineDestination } from './sync-destination.js';

type ServiceEventDetails =
  | ChainResumedDetails
  | SinkRecoveredDetails
  | LogReopenedDetails
  | AuthFailuresSummaryDetails
  | RefusalsSummaryDetails
  | FleetActionDetails
  | CheckpointDetails;

export { AUDIT_LOG_STDOUT } from './open-destination.js';

/** Attacker-controlled strings are bounded so one request cannot bloat the log. */
const MAX_USER_AGENT_CHARS = 256;
const MAX_ERROR_MESSAGE_CHARS = 1024;
/** While the sink is failing, isWritable() retries (by writing AuditSinkRecovered) at most this often. */
const RECOVERY_PROBE_INTERVAL_MS = 1000;
/** A turn that queues this much is written at once rather than at the end of the turn. */
const MAX_BATCH_BYTES = 1024 * 1024;

export interface AuditLogOptions {
  /** The AUDIT_LOG setting: a file path (appended, created 0600) or the literal `stdout`. */
  destination: string;
  /** Metrics hooks (e.g. prom-client counters). Exceptions they throw are ignored. */
  onWritten?: () => void;
  onFailed?: (error: AuditWriteError) => void;
  /** Called once the log has followed a rotation (AuditLogReopened queued); for the checkpoints. */
  onReopened?: () => void;
  /** Tuning for tests: bounds of the backwards read of an existing file. */
  tailWindowBytes?: number;
  maxTailBytes?: number;
}

/** The lines queued since the last write(2), and the waiters for them. */
interface Batch {
  /** Where the chain stood before the batch's first line: rewound to if the batch fails. */
  start: ChainLink;
  /** Settles when the batch has been written (or has failed). Never rejects unobserved. */
  written: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

interface FailureState {
  count: number;
  firstTime: string;
  lastTime: string;
  lastErrorCode: string;
}

export class AuditLog {
  private readonly logger: Logger;
  private readonly chain: HashChain;
  private closed = false;
  private failure: FailureState | null = null;
  private lastRecoveryAttempt = 0;
  private batch: Batch | null = null;
  /** The last line known to be in the file: what chainHead() publishes as an anchor. */
  private writtenHead: ChainHead | null;
  /** Sequence of the first line this process writes: where its checkpoints start covering. */
  readonly openedAtSequence: number;

  private constructor(
    private readonly destination: SyncLineDestination,
    start: ChainLink,
    private readonly options: AuditLogOptions,
  ) {
    this.chain = new HashChain(start);
    this.writtenHead = this.chain.head();
    this.openedAtSequence = start.sequence;
    this.logger = createAuditLogger(destination);
  }

  /**
   * Opens (creating it and its directories if needed) the audit log and positions the hash
   * chain after its last line. Throws AuditWriteError if the file cannot be opened, or if an
   * AuditChainResumed event is needed and cannot be written.
   */
  static open(options: AuditLogOptions): AuditLog {
    let log: AuditLog | undefined;
    // The chain advances only once the destination reports the line fully written.
    const onLine = (lineBytes: Buffer): void => log?.chain.advance(lineBytes);
    const { destination, start } = openDestination(options.destination, onLine, {
      ...(options.tailWindowBytes !== undefined && { initialWindowBytes: options.tailWindowBytes }),
      ...(options.maxTailBytes !== undefined && { maxWindowBytes: options.maxTailBytes }),
    });

    log = new AuditLog(destination, start.link, options);
    if (start.kind === 'resume') {
      if (start.terminatePartialLine) destination.terminatePartialLineFirst();
      try {
        log.emitServiceEvent('AuditChainResumed', start.details);
      } catch (error) {
        try {
          destination.close();
        } catch {
          // already failing; the write error is the one to report
        }
        throw new AuditWriteError(`cannot write AuditChainResumed to ${options.destination}: ${String(error)}`, {
          cause: error,
        });
      }
    }
    return log;
  }

  /**
   * Writes one event: resolves once its line is in the file (written with the rest of this
   * turn's lines). The event takes its place in the chain synchronously, in call order.
   * @throws (rejects with) AuditWriteError if it is not written (the caller must then answer
   * 503 with no payload).
   */
  async write(input: AuditEventInput): Promise<void> {
    let written: Promise<void>;
    try {
      this.assertUsable();
      if (this.failure) this.recover();
      // Fields are picked, not spread: the line has a stable CloudTrail-like key order, and
      // stray top-level properties on `input` never reach the log.
      written = this.enqueue((link) => ({
        eventVersion: AUDIT_EVENT_VERSION,
        eventTime: new Date().toISOString(),
        eventID: randomUUID(),
        eventSource: AUDIT_EVENT_SOURCE,
        eventName: input.eventName,
        eventType: 'ApiCall',
        userIdentity: input.userIdentity,
        sourceIPAddress: input.sourceIPAddress,
        userAgent: truncate(input.userAgent, MAX_USER_AGENT_CHARS),
        requestID: input.requestID,
        httpStatus: input.httpStatus,
        errorCode: input.errorCode,
        errorMessage: truncate(input.errorMessage, MAX_ERROR_MESSAGE_CHARS),
        requestParameters: input.requestParameters,
        responseElements: input.responseElements,
        additionalEventData: input.additionalEventData,
        sequence: link.sequence,
        previousHash: link.previousHash,
      }));
    } catch (error) {
      // Counted once per refused request (probes by isWritable() are not counted).
      throw this.fail(error);
    }
    try {
      await written;
    } catch (error) {
      throw this.fail(error);
    }
  }

  /**
   * Writes an AuthFailuresSummarized service event at once, chained like any other line.
   * @throws (rejects with) AuditWriteError if it is not written.
   */
  async summarizeAuthFailures(details: AuthFailuresSummaryDetails): Promise<void> {
    try {
      this.assertUsable();
      if (this.failure) this.recover();
      this.emitServiceEvent('AuthFailuresSummarized', details);
    } catch (error) {
      throw this.fail(error);
    }
  }

  /**
   * Writes a RefusalsSummarized service event at once, chained like any other line.
   * @throws (rejects with) AuditWriteError if it is not written.
   */
  async summarizeRefusals(details: RefusalsSummaryDetails): Promise<void> {
    try {
      this.assertUsable();
      if (this.failure) this.recover();
      this.emitServiceEvent('RefusalsSummarized', details);
    } catch (error) {
      throw this.fail(error);
    }
  }

  /**
   * Writes a FleetActionApplied service event at once, chained like any other line.
   * @throws (rejects with) AuditWriteError if it is not written.
   */
  async recordFleetAction(details: FleetActionDetails): Promise<void> {
    try {
      this.assertUsable();
      if (this.failure) this.recover();
      this.emitServiceEvent('FleetActionApplied', details);
    } catch (error) {
      throw this.fail(error);
    }
  }

  /**
   * Writes a signed checkpoint (an AuditCheckpoint service event) at once; returns its sequence.
   * @throws AuditWriteError if it is not written.
   */
  appendCheckpoint(details: CheckpointDetails): number {
    try {
      this.assertUsable();
      if (this.failure) this.recover();
      let sequence = -1;
      this.enqueue((link) => {
        sequence = link.sequence;
        return serviceEventRecord(link, 'AuditCheckpoint', details);
      });
      this.flushBatch();
      return sequence;
    } catch (error) {
      throw this.fail(error);
    }
  }

  /**
   * For readiness: true if the log is open and the last write succeeded. While writes are
   * failing it probes (at most once a second) by writing the AuditSinkRecovered event, so an
   * instance taken out of rotation can come back once the disk is writable again.
   */
  isWritable(): boolean {
    if (this.closed || this.destination.broken || !this.destination.isOpen()) return false;
    if (!this.failure) {
      // Never ready while writing to a file that is no longer at the path: follow it first.
      try {
        this.followRotation('readiness');
        return true;
      } catch {
        return false;
      }
    }
    const now = Date.now();
    if (now - this.lastRecoveryAttempt < RECOVERY_PROBE_INTERVAL_MS) return false;
    try {
      this.recover();
      return true;
    } catch {
      return false;
    }
  }

  /**
   * For the reopen signal (SIGUSR2, sent by logrotate's postrotate): if the file being written
   * is no longer at the AUDIT_LOG path, opens the one there, writes AuditLogReopened into it at
   * once (so the new file starts by continuing the chain even if no request follows), and
   * returns what had become of the previous file. null if nothing moved (or for stdout).
   * @throws AuditWriteError if the new file cannot be opened or written (then every write
   * fails closed and readiness is false, each retrying, until it can).
   */
  reopen(): LogReopenedDetails['reason'] | null {
    this.assertUsable();
    try {
      return this.followRotation('signal');
    } catch (error) {
      if (error instanceof AuditWriteError) throw error;
      throw new AuditWriteError(`reopening the audit log failed: ${String(error)}`, { cause: error });
    }
  }

  /** The last line written (sequence and hash), to publish as an external anchor; null if none yet. */
  chainHead(): ChainHead | null {
    return this.writtenHead;
  }

  /** Writes what is queued, fsyncs and closes the file. Later write() calls throw. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      this.flushBatch();
    } catch {
      // The batch's writers were told (their write() rejected); closing goes on.
    }
    this.closed = true;
    try {
      this.destination.close();
    } catch (error) {
      throw new AuditWriteError(`closing the audit log failed: ${String(error)}`, { cause: error });
    }
  }

  private assertUsable(): void {
    if (this.closed) throw new AuditWriteError('audit log is closed');
    if (this.destination.broken) {
      throw new AuditWriteError(`audit log is unusable: ${this.destination.broken.message}`, {
        cause: this.destination.broken,
      });
    }
  }

  /** First successful line after an outage: records how many events were refused and when. */
  private recover(): void {
    const failure = this.failure;
    if (!failure) return;
    this.lastRecoveryAttempt = Date.now();
    const details: SinkRecoveredDetails = {
      failedWrites: failure.count,
      firstFailureTime: failure.firstTime,
      lastFailureTime: failure.lastTime,
      lastErrorCode: failure.lastErrorCode,
    };
    this.emitServiceEvent('AuditSinkRecovered', details);
    this.failure = null;
  }

  /** Writes a service event at once (not at the end of the turn): its callers need the outcome now. */
  private emitServiceEvent(eventName: ServiceEventName, details: ServiceEventDetails): void {
    this.assertUsable();
    this.enqueue((link) => serviceEventRecord(link, eventName, details));
    this.flushBatch();
  }

  /**
   * If the file moved, writes (with whatever is queued) to the file now at the path; returns
   * what became of the previous file, or null. Throws if the move cannot be followed.
   */
  private followRotation(detectedBy: LogReopenedDetails['detectedBy']): LogReopenedDetails['reason'] | null {
    if (!this.destination.moved()) return null;
    // An empty batch is enough: flushBatch follows the path and adds AuditLogReopened.
    this.batch ??= this.startBatch(this.chain.next());
    return this.flushBatch(detectedBy);
  }

  /**
   * Before a batch is written: if the file is no longer at the path, opens the one there and
   * queues AuditLogReopened after the batch's lines. Returns the reason, or null.
   */
  private followPath(detectedBy: LogReopenedDetails['detectedBy']): LogReopenedDetails['reason'] | null {
    const reason = this.destination.moved();
    const path = this.destination.path;
    if (!reason || path === undefined) return null;
    const head = this.writtenHead;
    const next = head ? { sequence: head.sequence + 1, previousHash: head.hash } : { sequence: 0, previousHash: GENESIS_HASH };
    this.destination.replaceFile(
      openReplacement(path, next, {
        ...(this.options.tailWindowBytes !== undefined && { initialWindowBytes: this.options.tailWindowBytes }),
        ...(this.options.maxTailBytes !== undefined && { maxWindowBytes: this.options.maxTailBytes }),
      }),
    );
    this.queue((link) => serviceEventRecord(link, 'AuditLogReopened', { reason, detectedBy }));
    callSafely(this.options.onReopened);
    return reason;
  }

  /**
   * Chains the record and hands it to pino, which queues exactly one line in the destination;
   * returns the promise of the batch that will write it. Throws the raw cause if the line
   * was not queued, or if it was written at once (a full batch) and that write failed.
   */
  private enqueue(buildRecord: (link: ChainLink) => Record<string, unknown>): Promise<void> {
    const link = this.queue(buildRecord);
    const batch = this.batch ?? this.startBatch(link);
    // A turn that queues a lot is written at once. If that write fails, the error reaches the
    // batch's other writers through `batch.written` and this caller by the throw.
    if (this.destination.pendingBytes >= MAX_BATCH_BYTES) this.flushBatch();
    return batch.written;
  }

  /** Chains the record and has pino queue its one line in the destination; returns its link. */
  private queue(buildRecord: (link: ChainLink) => Record<string, unknown>): ChainLink {
    const link = this.chain.next();
    const record = buildRecord(link);
    const before = this.destination.linesQueued;
    this.logger.info(record);
    if (this.destination.linesQueued !== before + 1) {
      throw new Error('the audit logger did not write the event');
    }
    return link;
  }

  private startBatch(start: ChainLink): Batch {
    let resolve!: () => void;
    let reject!: (error: unknown) => void;
    const written = new Promise<void>((onResolve, onReject) => {
      resolve = onResolve;
      reject = onReject;
    });
    // Service events are flushed synchronously and report their error by throwing; nobody may
    // await their batch, and an unobserved rejection must not crash the process.
    written.catch(() => {});
    const batch: Batch = { start, written, resolve, reject };
    this.batch = batch;
    setImmediate(() => {
      if (this.batch !== batch) return; // already written (a service event, a big turn, close)
      try {
        this.flushBatch();
      } catch {
        // Reported through `batch.written`.
      }
    });
    return batch;
  }

  /**
   * Writes the current batch with one synchronous write, to the file now at the path; on
   * failure rewinds the chain and rethrows. Returns what became of the previous file if the
   * log had to follow the path, else null.
   */
  private flushBatch(detectedBy: LogReopenedDetails['detectedBy'] = 'write'): LogReopenedDetails['reason'] | null {
    const batch = this.batch;
    if (!batch) return null;
    let followed: LogReopenedDetails['reason'] | null;
    try {
      followed = this.followPath(detectedBy);
    } catch (error) {
      // Not one of the batch's lines may go to a file that is no longer at the path.
      this.batch = null;
      this.destination.discardPending();
      this.chain.rewind(batch.start);
      batch.reject(error);
      throw error;
    }
    this.batch = null;
    let count: number;
    try {
      count = this.destination.flush();
    } catch (error) {
      this.chain.rewind(batch.start);
      batch.reject(error);
      throw error;
    }
    this.writtenHead = this.chain.head();
    for (let line = 0; line < count; line += 1) callSafely(this.options.onWritten);
    batch.resolve();
    return followed;
  }

  private fail(cause: unknown): AuditWriteError {
    const error =
      cause instanceof AuditWriteError ? cause : new AuditWriteError(`audit event not written: ${String(cause)}`, { cause });
    callSafely(this.options.onFailed, error);
    if (this.closed) return error; // writing after close is a caller bug, not a sink outage
    const now = new Date().toISOString();
    this.failure = this.failure
      ? { ...this.failure, count: this.failure.count + 1, lastTime: now, lastErrorCode: error.code }
      : { count: 1, firstTime: now, lastTime: now, lastErrorCode: error.code };
    return error;
  }
}

function serviceEventRecord(link: ChainLink, eventName: ServiceEventName, details: ServiceEventDetails): Record<string, unknown> {
  return {
    eventVersion: AUDIT_EVENT_VERSION,
    eventTime: new Date().toISOString(),
    eventID: randomUUID(),
    eventSource: AUDIT_EVENT_SOURCE,
    eventName,
    eventType: 'ServiceEvent',
    serviceEventDetails: details,
    sequence: link.sequence,
    previousHash: link.previousHash,
  };
}

/**
 * The audit log's pino instance over `destination` (exported for the bench). No pid, hostname
 * or time of pino's own: eventTime is part of the event. The line is the record alone, in one
 * JSON.stringify (auditLine): pino's general serializer walks the object key by key for fields
 * an event never has (level, time, message, error) and cost a noticeable share of a request.
 * pino documents its symbols for overriding a method where performance needs it; pino still
 * owns the level, the write and the destination.
 */
export function createAuditLogger(destination: DestinationStream): Logger {
  const logger = pino({ level: 'info', base: null, timestamp: false }, destination);
  (logger as unknown as Record<symbol, unknown>)[pino.symbols.asJsonSym] = auditLine;
  return logger;
}

/**
 * One audit line: the record (eventVersion first, then the CloudTrail-like key order the
 * builders above give it) after the redaction backstop (redaction.ts), and a newline. The bytes
 * pino's general serializer wrote, with one exception: a lone surrogate in a top-level string,
 * which pino wrote raw (the file then held U+FFFD), is escaped as nested strings always were.
 */
function auditLine(record: Record<string, unknown>): string {
  return `${JSON.stringify(censorSecretFields(record))}\n`;
}

function truncate<T extends string | null | undefined>(value: T, maxChars: number): T {
  return (typeof value === 'string' && value.length > maxChars ? `${value.slice(0, maxChars)}...` : value) as T;
}

function callSafely<A extends unknown[]>(callback: ((...args: A) => void) | undefined, ...args: A): void {
  try {
    callback?.(...args);
  } catch {
    // Metrics must never turn a written event into a failed request.
  }
}
