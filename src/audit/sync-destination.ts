/**
 * A pino destination that queues lines and writes them with synchronous write(2) calls when
 * told to, THROWING when it cannot.
 *
 * pino's own destinations (sonic-boom, transports) buffer or write asynchronously and report
 * errors as 'error' events later, which is useless for failing closed: the HTTP layer must know,
 * before it answers, that the event is in the file. Here pino's `stream.write(line)` (called
 * synchronously from `logger.info()`) only queues the line; AuditLog decides when to `flush()`
 * (once per event-loop turn: group commit, see audit-log.ts), and flush() either writes every
 * queued line or throws with none of them left in the file. AuditLog checks `linesQueued`
 * after each `logger.info()` to be sure its line reached the queue.
 *
 * "Written" means handed to the kernel with write(2); it survives a process crash but not
 * necessarily a power loss (no fsync per event: it would cost milliseconds per request).
 */
import { closeSync, fstatSync, fsyncSync, ftruncateSync, writeSync } from 'node:fs';

/** How long a write may wait for a non-blocking pipe (stdout) to drain before failing. */
const DEFAULT_EAGAIN_BUDGET_MS = 1000;
const sleepCell = new Int32Array(new SharedArrayBuffer(4));

export interface SyncLineDestinationOptions {
  fd: number;
  /** Regular files get partial-write rollback and fsync; pipes, ttys and devices do not. */
  regularFile: boolean;
  /** Current file size (regular files), to roll back a partial write. */
  size: number;
  /** Whether close() closes the descriptor (false for stdout). */
  ownsFd: boolean;
  /** Called when a line is queued, with its bytes minus the newline (AuditLog chains it then). */
  onLine: (lineBytes: Buffer) => void;
  /** Called once when the destination is closed. */
  onClose?: () => void;
  eagainBudgetMs?: number;
}

export class SyncLineDestination {
  /** Incremented per line queued; lets AuditLog check that pino handed its line over. */
  linesQueued = 0;
  /** Set when a partial line could not be rolled back: every later line would be corrupt. */
  broken: Error | null = null;

  private readonly fd: number;
  private readonly regularFile: boolean;
  private readonly ownsFd: boolean;
  private readonly onLine: (lineBytes: Buffer) => void;
  private readonly onClose: (() => void) | undefined;
  private readonly eagainBudgetMs: number;
  private size: number;
  private closed = false;
  /** Written before the next line: a newline that terminates a partial line left by a crash. */
  private prefix = '';
  /** Lines queued since the last flush, each ending in '\n' (the first may start with the prefix). */
  private pending: Buffer[] = [];
  private pendingLineCount = 0;
  /** Bytes in `pending`; AuditLog flushes early when a turn queues a lot. */
  pendingBytes = 0;
  /** The prefix the pending lines consumed, to restore if their flush fails. */
  private pendingPrefix = '';

  constructor(options: SyncLineDestinationOptions) {
    this.fd = options.fd;
    this.regularFile = options.regularFile;
    this.size = options.size;
    this.ownsFd = options.ownsFd;
    this.onLine = options.onLine;
    this.onClose = options.onClose;
    this.eagainBudgetMs = options.eagainBudgetMs ?? DEFAULT_EAGAIN_BUDGET_MS;
  }

  terminatePartialLineFirst(): void {
    this.prefix = '\n';
  }

  /**
   * Called by pino with one serialized line ending in '\n'. Queues it and reports its bytes
   * (for the hash chain) at once; nothing is written until flush(). Throws if the destination
   * is closed or broken.
   */
  write(line: string): void {
    if (this.closed) throw new Error('audit destination is closed');
    if (this.broken) throw this.broken;
    const text = line.endsWith('\n') ? line : `${line}\n`;
    const buffer = Buffer.from(this.prefix + text, 'utf8');
    const lineBytes = buffer.subarray(this.prefix.length, buffer.length - 1);
    if (this.prefix) {
      this.pendingPrefix = this.prefix;
      this.prefix = '';
    }
    this.pending.push(buffer);
    this.pendingBytes += buffer.length;
    this.pendingLineCount += 1;
    this.linesQueued += 1;
    this.onLine(lineBytes);
  }

  /**
   * Writes every queued line, with as few write(2) calls as the kernel allows (usually one).
   * On failure none of them stays in the file (a partial write is truncated away, or the
   * destination is marked broken), the queue is emptied, and the error is thrown.
   * @returns the number of lines written.
   */
  flush(): number {
    const count = this.pendingLineCount;
    if (count === 0) return 0;
    const buffer = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
    const prefix = this.pendingPrefix;
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingLineCount = 0;
    this.pendingPrefix = '';
    try {
      if (this.closed) throw new Error('audit destination is closed');
      if (this.broken) throw this.broken;
      this.writeAll(buffer);
    } catch (error) {
      // The partial-line terminator was not written either: the next flush must write it.
      if (prefix) this.prefix = prefix;
      throw error;
    }
    this.size += buffer.length;
    return count;
  }

  /** Cheap liveness check of the descriptor (EBADF if someone closed it). */
  isOpen(): boolean {
    if (this.closed) return false;
    try {
      fstatSync(this.fd);
      return true;
    } catch {
      return false;
    }
  }

  /** fsync (regular files) and close. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.regularFile) fsyncSync(this.fd);
    } finally {
      try {
        if (this.ownsFd) closeSync(this.fd);
      } finally {
        this.onClose?.();
      }
    }
  }

  private writeAll(buffer: Buffer): void {
    let offset = 0;
    let waitedMs = 0;
    while (offset < buffer.length) {
      let written: number;
      try {
        written = writeSync(this.fd, buffer, offset, buffer.length - offset);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN' && waitedMs < this.eagainBudgetMs) {
          // A non-blocking pipe is full (stdout read by a slow collector). Block briefly:
          // the request cannot be answered until its event is out anyway.
          Atomics.wait(sleepCell, 0, 0, 1);
          waitedMs += 1;
          continue;
        }
        this.rollback(offset, error);
        throw error;
      }
      if (written === 0) {
        // Should not happen for a non-empty write; never spin on it.
        const error = Object.assign(new Error('write(2) wrote 0 bytes'), { code: 'EIO' });
        this.rollback(offset, error);
        throw error;
      }
      offset += written;
    }
  }

  /**
   * After a failed write, removes the bytes of the partial line so the file stays a sequence
   * of whole lines and the next write (after the disk is freed, say) continues the chain.
   * If that is impossible the destination is marked broken: refusing every later event is
   * better than appending to half a line. A restart then resumes with AuditChainResumed.
   */
  private rollback(bytesWritten: number, cause: unknown): void {
    if (bytesWritten === 0) return;
    if (!this.regularFile) {
      this.broken = new Error(`partial audit line on a non-regular file (${String(cause)})`, { cause });
      return;
    }
    try {
      // Only truncate if the file holds exactly what we think: we are its single writer.
      const expected = this.size + bytesWritten;
      const actual = fstatSync(this.fd).size;
      if (actual !== expected) throw new Error(`file size ${actual}, expected ${expected}`);
      ftruncateSync(this.fd, this.size);
    } catch (error) {
      this.broken = new Error(`cannot roll back a partial audit line: ${String(error)}`, { cause });
    }
  }
}
