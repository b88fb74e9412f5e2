/**
 * The stream spool: what lets a half-duplex client (one that sends its whole body before it
 * reads the answer, as Python `requests` does) use the streaming routes. Without it, the answer
 * backs up, the Transform stops, the service stops reading the upload, and both sides wait.
 *
 * A SpoolBuffer sits where the bytes are ciphertext (the encrypt route's output, the decrypt
 * route's input). While its reader takes bytes it pushes back on its writer, with a few
 * segments in memory; only when the reader stalls (no read for a short while, as a client
 * that sends before it reads) does it accept every write at once, appending to a file until
 * the reader reads again. Plaintext never goes through one.
 *
 * The file is created 0600 in the spool directory and unlinked at once, so it disappears with
 * its descriptor whatever ends the request (a crash included); it is emptied (truncated) each
 * time the reader catches up. Its bytes count against a per-principal and an overall quota:
 * over either, the writer fails with SpoolQuotaError.
 */
import { randomUUID } from 'node:crypto';
import { promises as fs, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex } from 'node:stream';

/** In-memory bytes a buffer holds before it writes to disk: a few 64 KiB segments. */
const MEMORY_BYTES = 256 * 1024;
/**
 * How long a write waits for its reader before it goes to disk. Longer than the pauses of a
 * reader that keeps up: a garbage collection, a TCP retransmission after a loss (at least
 * 200 ms on Linux), and the gaps of a slow reader, whose socket frees room (and so asks this
 * buffer for more) only in bursts of about half the kernel's send buffer, a few MiB. Short
 * enough that a half-duplex client, whose reader is stalled for its whole upload, barely
 * notices the one wait before its upload goes on into the file. The spool never waits longer
 * than a quarter of STREAM_IDLE_TIMEOUT_MS, so the wait cannot look like an idle stream.
 */
export const STALL_MS = 500;
/** Bytes read back from the file at a time. */
const READ_BYTES = 64 * 1024;
/**
 * Chunks smaller than this are copied together into blocks of COALESCED_BYTES in memory: a
 * writer of tiny chunks (an upload in 1-byte HTTP chunks) would otherwise leave one Buffer
 * object per byte in the queue, costing a hundred times the bytes in heap and a queue whose
 * every dequeue moves the rest of it.
 */
const SMALL_CHUNK_BYTES = 4 * 1024;
const COALESCED_BYTES = 16 * 1024;
const FILE_PREFIX = 'spool-';

/** Runs of chunks under SMALL_CHUNK_BYTES joined into one buffer each; larger chunks as they are. */
function joinSmallRuns(chunks: Buffer[]): Buffer[] {
  const pieces: Buffer[] = [];
  let run: Buffer[] = [];
  const endRun = (): void => {
    if (run.length > 0) pieces.push(run.length === 1 ? run[0]! : Buffer.concat(run));
    run = [];
  };
  for (const chunk of chunks) {
    if (chunk.length < SMALL_CHUNK_BYTES) {
      run.push(chunk);
    } else {
      endRun();
      pieces.push(chunk);
    }
  }
  endRun();
  return pieces;
}

export class SpoolQuotaError extends Error {
  override readonly name = 'SpoolQuotaError';
}

export interface SpoolLimits {
  /** How long a write waits for a stalled reader before it goes to disk (default STALL_MS). */
  stallMs?: number;
  /** The directory; undefined: a fresh one under os.tmpdir() (made when first needed), removed on close. */
  dir: string | undefined;
  maxBytes: number;
  maxBytesPerPrincipal: number;
}

export interface SpoolObserver {
  /** Bytes written to a spool file (a counter's increment). */
  spooled(bytes: number): void;
}

export class StreamSpool {
  private ownDir: string | undefined;
  private total = 0;
  private readonly byPrincipal = new Map<string, number>();

  constructor(private readonly limits: SpoolLimits, private readonly observer: SpoolObserver = { spooled: () => undefined }) {
    if (limits.dir) {
      try {
        mkdirSync(limits.dir, { recursive: true, mode: 0o700 });
        // Files a previous process left behind (unlinked at once, so only a crash between open and unlink).
        for (const name of readdirSync(limits.dir)) if (name.startsWith(FILE_PREFIX)) rmSync(join(limits.dir, name), { force: true });
      } catch (error) {
        throw new Error(`STREAM_SPOOL_DIR (${limits.dir}) cannot be used: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
    }
  }

  /** STREAM_SPOOL_DIR, or a directory of this instance's own under os.tmpdir(), made on first use. */
  get dir(): string {
    if (this.limits.dir) return this.limits.dir;
    this.ownDir ??= mkdtempSync(join(tmpdir(), 'envelope-spool-'));
    return this.ownDir;
  }

  /** Bytes on disk now, all streams together. */
  get bytesNow(): number {
    return this.total;
  }

  /** A buffer whose disk bytes are charged to `principal`. */
  buffer(principal: string): SpoolBuffer {
    return new SpoolBuffer(this, principal);
  }

  close(): void {
    if (this.ownDir) rmSync(this.ownDir, { recursive: true, force: true });
    this.ownDir = undefined;
  }

  /** @internal */
  get stallMs(): number {
    return this.limits.stallMs ?? STALL_MS;
  }

  /** @internal */
  charge(principal: string, bytes: number): void {
    const mine = this.byPrincipal.get(principal) ?? 0;
    if (mine + bytes > this.limits.maxBytesPerPrincipal) {
      throw new SpoolQuotaError(`the stream spool of this principal is full (STREAM_SPOOL_MAX_BYTES_PER_PRINCIPAL, ${this.limits.maxBytesPerPrincipal} bytes): read the answer while sending`);
    }
    if (this.total + bytes > this.limits.maxBytes) {
      throw new SpoolQuotaError(`the stream spool is full (STREAM_SPOOL_MAX_BYTES, ${this.limits.maxBytes} bytes): read the answer while sending`);
    }
    this.byPrincipal.set(principal, mine + bytes);
    this.total += bytes;
    this.observer.spooled(bytes);
  }

  /** @internal */
  release(principal: string, bytes: number): void {
    if (bytes === 0) return;
    const left = (this.byPrincipal.get(principal) ?? 0) - bytes;
    if (left > 0) this.byPrincipal.set(principal, left);
    else this.byPrincipal.delete(principal);
    this.total -= bytes;
  }
}

/**
 * A FIFO of bytes between a writer and a reader that may not read yet. While the reader takes
 * bytes, the buffer holds at most MEMORY_BYTES (plus one chunk) and the writer waits for room:
 * a reader that keeps up, even slowly, costs no disk and no quota. When a write has waited
 * STALL_MS without a read (the client is not reading: half-duplex), writes go to the file
 * without waiting, until the reader reads again; then the writer waits while the reader drains
 * the file, and memory takes over once the file is empty (truncated).
 *
 * Order: the memory queue holds the oldest bytes; once the file has bytes, no write goes to
 * memory until the reader has caught up with the file.
 */
export class SpoolBuffer extends Duplex {
  private readonly memory: Buffer[] = [];
  /** Bytes in memory, the open block's included. */
  private memoryBytes = 0;
  /** The block small chunks are being copied into: the newest bytes in memory. */
  private block: Buffer | undefined;
  private blockUsed = 0;
  private file: fs.FileHandle | undefined;
  private opening: Promise<fs.FileHandle> | undefined;
  /** Bytes in the file, and how far the reader has read it. */
  private written = 0;
  private readAt = 0;
  private reading = false;
  /** File operations run one after another: a truncate never overtakes a write. */
  private fileOps: Promise<unknown> = Promise.resolve();
  private wantsData = false;
  private finished = false;
  /** Awaited before the end is released (the stream's outcome event); see holdEnd. */
  private endGate: (() => Promise<void>) | undefined;
  private gating = false;
  /** The write held back until the reader makes room (or stalls): the pushback. */
  private waiting: { chunks: Buffer[]; bytes: number; callback: (error?: Error | null) => void } | undefined;
  /** The reader's requests so far, and their number when the stall timer last looked. */
  private reads = 0;
  private readsSeen = 0;
  /** Consecutive halves of the stall interval without a read while a write waited. */
  private silentHalves = 0;
  private stallTimer: NodeJS.Timeout | undefined;
  /** The reader stalled with a write waiting: writes go to the file until it reads again. */
  private spilling = false;

  constructor(private readonly spool: StreamSpool, private readonly principal: string) {
    // Room for a whole segment with its tag (64 KiB + 16): at READ_BYTES, every write of one
    // would report "full", and its writer would pause and resume once per segment.
    super({ readableHighWaterMark: READ_BYTES, writableHighWaterMark: 2 * READ_BYTES });
  }

  /**
   * Holds the end of the output until `gate` resolves (a rejection destroys the buffer with
   * it): when this buffer is a response body, its last bytes, not the writer's, end the stream.
   */
  holdEnd(gate: () => Promise<void>): void {
    this.endGate = gate;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.waiting = { chunks: [chunk], bytes: chunk.length, callback };
    this.accept();
  }

  /**
   * The chunks the writer queued while the last one waited, taken as one write: a writer of
   * tiny chunks (a client's upload in 1-byte HTTP chunks) then costs one file write per batch
   * (at most the writable high-water mark, 128 KiB), not one per chunk. Runs of small chunks
   * are joined; large ones (the usual 16-64 KiB) are written as they are, without a copy.
   */
  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    const pieces = joinSmallRuns(chunks.map(({ chunk }) => chunk));
    this.waiting = { chunks: pieces, bytes: pieces.reduce((sum, piece) => sum + piece.length, 0), callback };
    this.accept();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.finished = true;
    this.feed();
    callback();
  }

  override _read(): void {
    this.reads++;
    // The reader takes bytes again: the file takes no more, the writer waits while it drains.
    this.spilling = false;
    this.wantsData = true;
    this.feed();
    this.accept();
  }

  override _destroy(error: Error | null, callback: (error: Error | null) => void): void {
    clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    this.waiting = undefined;
    this.memory.length = 0;
    this.block = undefined;
    this.blockUsed = 0;
    this.spool.release(this.principal, this.written);
    this.written = 0;
    this.readAt = 0;
    const closing = this.file ?? this.opening;
    this.file = undefined;
    this.opening = undefined;
    if (!closing) return callback(error);
    Promise.resolve(closing)
      .then((file) => file.close())
      .then(
        () => callback(error),
        () => callback(error),
      );
  }

  /** Puts the waiting write where it may go now: memory (room, file empty), the file (reader stalled), or nowhere yet. */
  private accept(): void {
    const waiting = this.waiting;
    if (!waiting || this.destroyed) return;
    const { chunks, bytes, callback } = waiting;
    // An empty memory takes any write, so a chunk larger than MEMORY_BYTES never waits for a stall.
    if (this.written === 0 && (this.memoryBytes === 0 || this.memoryBytes + bytes <= MEMORY_BYTES)) {
      this.waiting = undefined;
      for (const chunk of chunks) this.remember(chunk);
      this.feed();
      return callback();
    }
    if (!this.spilling) return this.watchForStall();
    this.waiting = undefined;
    try {
      this.spool.charge(this.principal, bytes);
    } catch (error) {
      return callback(error as Error);
    }
    const at = this.written;
    this.written += bytes;
    this.onFile((file) => file.writev(chunks, at)).then(
      ({ bytesWritten }) => {
        if (bytesWritten !== bytes) return callback(new Error(`short write to the spool file (${bytesWritten} of ${bytes} bytes)`));
        this.feed();
        callback();
      },
      (error: unknown) => callback(error as Error),
    );
  }

  /**
   * Spills to the file when a write waits and the reader made no request for two halves of
   * the stall interval in a row. Each half is judged after the event loop's pending I/O
   * (setImmediate), and two are needed because after a pause of the whole process (a busy
   * machine) the timer fires first, before the reads queued meanwhile have run: the second
   * half sees them, so a paused process is not taken for a stalled reader.
   */
  private watchForStall(): void {
    if (this.stallTimer) return;
    this.readsSeen = this.reads;
    this.silentHalves = 0;
    this.stallTimer = setTimeout(() => {
      setImmediate(() => {
        if (this.destroyed) return;
        if (!this.waiting) {
          this.stallTimer = undefined;
          return;
        }
        if (this.reads !== this.readsSeen) {
          this.readsSeen = this.reads;
          this.silentHalves = 0;
        } else if (++this.silentHalves >= 2) {
          this.stallTimer = undefined;
          this.spilling = true;
          this.accept();
          return;
        }
        this.stallTimer?.refresh();
      });
    }, this.spool.stallMs / 2).unref();
  }

  /** Queues a chunk in memory: as it is, or copied into the open block when it is small. */
  private remember(chunk: Buffer): void {
    this.memoryBytes += chunk.length;
    if (chunk.length >= SMALL_CHUNK_BYTES) {
      this.closeBlock();
      this.memory.push(chunk);
      return;
    }
    if (this.block && this.blockUsed + chunk.length > this.block.length) this.closeBlock();
    this.block ??= Buffer.allocUnsafe(COALESCED_BYTES);
    this.blockUsed += chunk.copy(this.block, this.blockUsed);
  }

  /**
   * Queues the open block's bytes after every older chunk. A block at least half full is handed
   * over as it is; a few bytes (a reader that keeps up takes them at once) are copied out, and
   * the block is kept for the next small chunks rather than each retaining a block of its own.
   */
  private closeBlock(): void {
    const block = this.block;
    if (!block || this.blockUsed === 0) return;
    if (this.blockUsed >= block.length / 2) {
      this.memory.push(block.subarray(0, this.blockUsed));
      this.block = undefined;
    } else {
      this.memory.push(Buffer.from(block.subarray(0, this.blockUsed)));
    }
    this.blockUsed = 0;
  }

  /** Gives the reader what it asked for: memory first, then the file, then the end. */
  private feed(): void {
    if (!this.wantsData || this.reading || this.destroyed) return;
    if (this.memory.length === 0) this.closeBlock();
    while (this.memory.length > 0) {
      const chunk = this.memory.shift() as Buffer;
      if (this.memory.length === 0) this.closeBlock();
      this.memoryBytes -= chunk.length;
      if (!this.push(chunk)) {
        this.wantsData = false;
        return;
      }
    }
    if (this.readAt < this.written && this.file) {
      this.reading = true;
      const length = Math.min(READ_BYTES, this.written - this.readAt);
      const out = Buffer.allocUnsafe(length);
      this.onFile((file) => file.read(out, 0, length, this.readAt)).then(
        ({ bytesRead }) => {
          this.reading = false;
          if (this.destroyed) return;
          this.readAt += bytesRead;
          this.wantsData = false;
          const more = this.push(out.subarray(0, bytesRead));
          if (this.readAt === this.written) {
            this.onFile((file) => this.caughtUp(file)).then(
              () => this.accept(),
              (error: unknown) => this.destroy(error as Error),
            );
          }
          if (more) this._read();
        },
        (error: unknown) => {
          this.reading = false;
          this.destroy(error as Error);
        },
      );
      return;
    }
    if (this.finished && this.readAt >= this.written) {
      const gate = this.endGate;
      if (gate) {
        this.endGate = undefined;
        this.gating = true;
        gate().then(
          () => {
            this.gating = false;
            this.feed();
          },
          (error: unknown) => this.destroy(error as Error),
        );
        return;
      }
      if (this.gating) return;
      this.wantsData = false;
      this.push(null);
    }
  }

  /** The reader has read everything written: empty the file and give its quota back. */
  private async caughtUp(file: fs.FileHandle): Promise<void> {
    // Queued after every write counted in `written`: if a newer write came, it is not caught up.
    if (this.readAt < this.written || this.written === 0 || this.reading) return;
    const bytes = this.written;
    this.written = 0;
    this.readAt = 0;
    this.spool.release(this.principal, bytes);
    await file.truncate(0);
  }

  private onFile<T>(operation: (file: fs.FileHandle) => Promise<T>): Promise<T> {
    const next = this.fileOps.then(async () => operation(await this.openFile()));
    this.fileOps = next.catch(() => undefined);
    return next;
  }

  private async openFile(): Promise<fs.FileHandle> {
    if (this.file) return this.file;
    if (this.destroyed) throw new Error('the spool buffer is closed');
    this.opening ??= (async () => {
      const path = join(this.spool.dir, `${FILE_PREFIX}${randomUUID()}`);
      const file = await fs.open(path, 'wx+', 0o600);
      await fs.unlink(path);
      return file;
    })();
    this.file = await this.opening;
    return this.file;
  }
}
