/**
 * Writes signed checkpoints into the audit chain: every `everyEvents` events or `intervalMs`,
 * after the log follows a rotation, and once more at shutdown.
 *
 * Signing never blocks a request: it runs beside the traffic, on the head already written.
 * While KMS cannot sign (down, throttled, access denied), attempts are retried with backoff
 * and requests go on being served and chained; each attempt takes the head as it then is, so
 * the checkpoint that finally gets signed covers everything since the previous one. The age
 * of the last signed checkpoint is what operators watch (metric and /readyz detail).
 *
 * Coverage: checkpoint k covers firstSequence..lastSequence, and checkpoint k+1 starts at
 * lastSequence + 1 (so it also covers checkpoint k's own line). A process that opens a file
 * ending with its previous checkpoint continues that series; otherwise (a new file, or a file
 * the previous process left without a final checkpoint) it starts a new one.
 */
import { appendFileSync, closeSync, fstatSync, openSync } from 'node:fs';
import { parseChainLine } from './chain.js';
import {
  CHECKPOINT_EVENT_NAME,
  CHECKPOINT_FORMAT,
  parseCheckpointDetails,
  statementDigest,
  statementMessage,
  type CheckpointDetails,
  type CheckpointStatement,
} from './checkpoint.js';
import type { AuditSigner } from './signer.js';
import type { ChainHead } from './chain.js';
import { readTail } from './tail.js';

/** Backoff between failed signing attempts: doubles from the first to the cap. */
const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 30_000;

export interface CheckpointLog {
  chainHead(): ChainHead | null;
  appendCheckpoint(details: CheckpointDetails): number;
  readonly openedAtSequence: number;
}

export interface CheckpointerLogger {
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
  error(object: object, message: string): void;
}

export interface CheckpointerOptions {
  audit: CheckpointLog;
  signer: AuditSigner;
  instance: string;
  everyEvents: number;
  intervalMs: number;
  /** AUDIT_DIGEST_FILE: each checkpoint is also appended there, one JSON line each. */
  digestFile?: string;
  /** Where the series continues from: the checkpoint the audit file ended with, if any. */
  resumeFrom?: TrailingCheckpoint;
  logger?: CheckpointerLogger;
  onSigned?: (at: number) => void;
  onFailed?: () => void;
  retryFirstMs?: number;
  retryMaxMs?: number;
  now?: () => number;
}

export interface TrailingCheckpoint {
  sequence: number;
  details: CheckpointDetails;
}

export interface CheckpointStatus {
  /** Epoch ms of the last checkpoint written (signed), or null if none yet. */
  lastSignedAt: number | null;
  /** Since when events have waited for a signature (epoch ms), or null when all are covered. */
  unsignedSince: number | null;
  consecutiveFailures: number;
}

export class Checkpointer {
  private nextFirst: number;
  private previousDigest: string | null;
  private ownLineSequence: number | null;
  private rangeStart: string;
  private eventsSince = 0;
  private running: Promise<void> | undefined;
  private again = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private interval: NodeJS.Timeout | undefined;
  private failures = 0;
  private lastSignedAt: number | null = null;
  private unsignedSince: number | null = null;
  private closed = false;
  private readonly now: () => number;

  constructor(private readonly options: CheckpointerOptions) {
    this.now = options.now ?? Date.now;
    const resume = options.resumeFrom;
    // Sanity only (the verifier checks its signature): it must be ours and cover lines before it.
    const usable =
      resume !== undefined &&
      resume.details.statement.instance === options.instance &&
      resume.details.statement.keyId === options.signer.keyId &&
      resume.details.statement.lastSequence < resume.sequence &&
      resume.sequence + 1 === options.audit.openedAtSequence;
    if (resume && usable) {
      this.nextFirst = resume.details.statement.lastSequence + 1;
      this.previousDigest = statementDigest(resume.details.statement);
      this.ownLineSequence = resume.sequence;
      this.rangeStart = resume.details.statement.endTime;
    } else {
      this.nextFirst = options.audit.openedAtSequence;
      this.previousDigest = null;
      this.ownLineSequence = null;
      this.rangeStart = new Date(this.now()).toISOString();
    }
  }

  start(): void {
    this.interval = setInterval(() => this.trigger(), this.options.intervalMs);
    this.interval.unref();
  }

  /** Called for every line written: counts towards the next checkpoint. */
  noteEvent(): void {
    this.unsignedSince ??= this.now();
    this.eventsSince += 1;
    if (this.eventsSince >= this.options.everyEvents) this.trigger();
  }

  /** Called when the log followed a rotation: sign what the previous file held, soon. */
  noteRotation(): void {
    setImmediate(() => this.trigger());
  }

  status(): CheckpointStatus {
    return { lastSignedAt: this.lastSignedAt, unsignedSince: this.unsignedSince, consecutiveFailures: this.failures };
  }

  /** Starts a checkpoint unless one is being signed (it then runs again after) or a retry waits. */
  trigger(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.retryTimer) return; // the retry will take the head as it then is
    this.running = this.attempt().finally(() => {
      this.running = undefined;
      if (this.again && !this.retryTimer) {
        this.again = false;
        this.trigger();
      }
    });
  }

  /** For tests and shutdown: resolves when no checkpoint is being signed. */
  async settled(): Promise<void> {
    while (this.running) await this.running;
  }

  /**
   * Shutdown: stops the schedule, then writes a final checkpoint of everything written, within
   * `timeoutMs`. Returns whether the log ends covered.
   */
  async close(timeoutMs: number): Promise<boolean> {
    clearInterval(this.interval);
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await this.settled();
    this.closed = true;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<boolean>((done) => {
      timer = setTimeout(() => done(false), timeoutMs);
    });
    try {
      return await Promise.race([this.checkpointNow(), deadline]);
    } finally {
      clearTimeout(timer);
      this.options.signer.close?.();
    }
  }

  private async attempt(): Promise<void> {
    const ok = await this.checkpointNow();
    if (ok || this.closed) return;
    const delay = Math.min(
      (this.options.retryFirstMs ?? RETRY_FIRST_MS) * 2 ** Math.max(0, this.failures - 1),
      this.options.retryMaxMs ?? RETRY_MAX_MS,
    );
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.trigger();
    }, delay);
    this.retryTimer.unref();
  }

  /** Signs and writes one checkpoint of the head as it is now. True if written or nothing to cover. */
  private async checkpointNow(): Promise<boolean> {
    const head = this.options.audit.chainHead();
    // Nothing new, or only our own previous checkpoint line: nothing to sign.
    if (!head || head.sequence < this.nextFirst || (head.sequence === this.nextFirst && head.sequence === this.ownLineSequence)) {
      return true;
    }
    this.eventsSince = 0;
    const endTime = new Date(this.now()).toISOString();
    const statement: CheckpointStatement = {
      format: CHECKPOINT_FORMAT,
      instance: this.options.instance,
      firstSequence: this.nextFirst,
      lastSequence: head.sequence,
      headHash: head.hash,
      startTime: this.rangeStart,
      endTime,
      eventCount: head.sequence - this.nextFirst + 1,
      previousDigest: this.previousDigest,
      keyId: this.options.signer.keyId,
      algorithm: this.options.signer.algorithm,
    };
    const message = statementMessage(statement);
    let details: CheckpointDetails;
    let sequence: number;
    try {
      const signed = await this.options.signer.sign(message);
      details = {
        statement,
        digest: statementDigest(statement),
        signature: signed.signature.toString('base64'),
        keyArn: signed.keyArn,
        kmsRequestId: signed.kmsRequestId,
      };
      sequence = this.options.audit.appendCheckpoint(details);
    } catch (error) {
      this.failures += 1;
      try {
        this.options.onFailed?.();
      } catch {
        // metrics only
      }
      this.options.logger?.warn(
        { err: { message: (error as Error).message }, uncoveredFrom: this.nextFirst, failures: this.failures },
        'audit checkpoint not signed; retrying (requests are still served and chained)',
      );
      return false;
    }
    this.failures = 0;
    this.nextFirst = head.sequence + 1;
    this.previousDigest = details.digest;
    this.ownLineSequence = sequence;
    this.rangeStart = endTime;
    this.lastSignedAt = this.now();
    // Events written while this one was being signed still wait for the next.
    const headNow = this.options.audit.chainHead();
    this.unsignedSince = headNow && headNow.sequence > sequence ? this.unsignedSince : null;
    try {
      this.options.onSigned?.(this.lastSignedAt);
    } catch {
      // metrics only
    }
    if (this.options.digestFile) this.appendDigest(sequence, details);
    return true;
  }

  private appendDigest(sequence: number, details: CheckpointDetails): void {
    const line = JSON.stringify({ eventName: CHECKPOINT_EVENT_NAME, sequence, ...details });
    try {
      // O_APPEND, 0600: small, append-only, for a shipper to send elsewhere.
      appendFileSync(this.options.digestFile as string, `${line}\n`, { mode: 0o600 });
    } catch (error) {
      this.options.logger?.error(
        { err: { message: (error as Error).message }, digestFile: this.options.digestFile },
        'audit checkpoint written to the audit log but not to AUDIT_DIGEST_FILE',
      );
    }
  }
}

/**
 * The checkpoint an audit file ends with, if it ends with one (a clean shutdown): read before
 * the log is opened, so a restart continues the same series. undefined otherwise.
 */
export function readTrailingCheckpoint(path: string): TrailingCheckpoint | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const stat = fstatSync(fd);
    if (!stat.isFile() || stat.size === 0) return undefined;
    const tail = readTail(fd, stat.size, 64 * 1024);
    const last = tail.lines.at(-1);
    if (!last || !tail.terminated) return undefined;
    const parsed = parseChainLine(last);
    if (!parsed.ok || parsed.fields.eventName !== CHECKPOINT_EVENT_NAME) return undefined;
    const details = parseCheckpointDetails(parsed.fields.serviceEventDetails);
    if (typeof details === 'string') return undefined;

    return { sequence: parsed.fields.sequence, details };
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
