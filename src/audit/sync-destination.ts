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
import { closeSync, fstatSync, fsyncSync, ftruncateSync, statSync, writeSync } from 'node:fs';

/** How long a write may wait for a non-blocking pipe (stdout) to drain before failing. */
const DEFAULT_EAGAIN_BUDGET_MS = 1000;
const sleepCell = new Int32Array(new SharedArrayBuffer(4));

/** A regular file opened by path: what it takes to notice that it is no longer at that path. */
export interface PathFile {
  fd: number;
  /** Current size, to roll back a partial write. */
  size: number;
  /** The absolute path it was opened at. */
  path: string;
  dev: number;
  ino: number;
  /** Called once when the descriptor is closed (replaced or closed). */
  release: () => void;
}

/** What became of the file the destination writes to: still linked under another name, or unlinked. */
export type MovedReason = 'renamed' | 'deleted';

export interface SyncLineDestinationOptions {
  /** A regular file opened by path: partial-write rollback, fsync, and rotation detection. */
  file?: PathFile;
  /** Otherwise a stream or device (stdout, /dev/null, a FIFO): none of those. */
  fd?: number;
  /** Whether close() closes `fd` (false for stdout). */
  ownsFd?: boolean;
  /** Called when a line is queued, with its bytes minus the newline (AuditLog chains it then). */
  onLine: (lineBytes: Buffer) => void;
  eagainBudgetMs?: number;
}

export class SyncLineDestination {
  /** Incremented per line queued; lets AuditLog check that pino handed its line over. */
  linesQueued = 0;
  /** Set when a partial line could not be rolled back: every later line would be corrupt. */
  broken: Error | null = null;

  private fd: number;
  /** Set for a regular file opened by path; replaced when the log follows the path to a new file. */
  private file: PathFile | undefined;
  private readonly ownsFd: boolean;
  private readonly onLine: (lineBytes: Buffer) => void;
  private readonly eagainBudgetMs: number;
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
    if (options.file === undefined && options.fd === undefined) throw new TypeError('a file or an fd is required');
    this.file = options.file;
    this.fd = options.file?.fd ?? (options.fd as number);
    this.ownsFd = options.file !== undefined || (options.ownsFd ?? true);
    this.onLine = options.onLine;
    this.eagainBudgetMs = options.eagainBudgetMs ?? DEFAULT_EAGAIN_BUDGET_MS;
  }

  /** The path of the file written to, for a regular file opened by path. */
  get path(): string | undefined {
    return this.file?.path;
  }

  /**
   * Whether the file being written is still the one at its path: one stat(2) of the path,
   * compared by device and inode with the open file (a second, fstat, only when it differs).
   * null when it is (or for streams and devices, which have no path to follow).
   */
  moved(): MovedReason | null {
    const file = this.file;
    if (!file || this.closed) return null;
    const atPath = statSync(file.path, { throwIfNoEntry: false });
    if (atPath && atPath.dev === file.dev && atPath.ino === file.ino) return null;
    let links = 0;
    try {
      links = fstatSync(file.fd).nlink;
    } catch {
      // A descriptor that cannot be examined is no better than an unlinked file.
    }
    return links === 0 ? 'deleted' : 'renamed';
  }

  /**
   * Writes from now on to `next` (the file now at the path); the previous file is fsynced and
   * closed. Queued lines stay queued: they are written to the new file. Throws if closed.
   */
  replaceFile(next: PathFile): void {
    if (this.closed) throw new Error('audit destination is closed');
    const previous = this.file;
    this.file = next;
    this.fd = next.fd;
    // A terminator owed to a partial line of the previous file does not belong in the new one.
    this.prefix = '';
    if (this.pendingPrefix && this.pending[0]) {
      this.pending[0] = this.pending[0].subarray(this.pendingPrefix.length);
      this.pendingBytes -= this.pendingPrefix.length;
      this.pendingPrefix = '';
    }
    if (previous) closeQuietly(previous);
  }

  /** Drops the queued lines unwritten (their batch failed before its write was attempted). */
  discardPending(): void {
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingLineCount = 0;
    if (this.pendingPrefix) this.prefix = this.pendingPrefix;
    this.pendingPrefix = '';
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
    if (this.file) this.file.size += buffer.length;
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
    const file = this.file;
    try {
      if (file) fsyncSync(file.fd);
    } finally {
      try {
        if (this.ownsFd) closeSync(this.fd);
      } finally {
        file?.release();
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
    const file = this.file;
    if (!file) {
      this.broken = new Error(`partial audit line on a non-regular file (${String(cause)})`, { cause });
      return;
    }
    try {
      // Only truncate if the file holds exactly what we think: we are its single writer.
      const expected = file.size + bytesWritten;
      const actual = fstatSync(file.fd).size;
      if (actual !== expected) throw new Error(`file size ${actual}, expected ${expected}`);
      ftruncateSync(file.fd, file.size);
    } catch (error) {
      this.broken = new Error(`cannot roll back a partial audit line: ${String(error)}`, { cause });
    }
  }
}

/** The previous file after a rotation: its lines are already written; errors closing it change nothing. */
function closeQuietly(file: PathFile): void {
  try {
    fsyncSync(file.fd);
  } catch {
    // Written with write(2) already; fsync only adds power-loss durability.
  }
  try {
    closeSync(file.fd);
  } catch {
    // Nothing more to do with it.
  }
  file.release();
}
