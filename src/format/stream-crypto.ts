/**
 * Stream cryptography (format version 2, docs/FORMAT.md): the per-stream key and commitment,
 * and two Transforms that seal and open segment by segment with the STREAM construction.
 *
 * Memory is bounded by the segment size: each Transform holds at most one segment plus one
 * input chunk, and Node's Transform stops calling _transform while its readable side is full,
 * so a slow reader stops the writer (and the socket behind it) instead of growing a buffer.
 * The opener releases a plaintext segment only once its tag verified; the last segment is
 * released only after `beforeEnd` resolved (the service writes the outcome audit event there).
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { EnvelopeError } from './errors.js';
import { TAG_BYTES } from './format.js';
import { MAX_STREAM_HEADER_BYTES, parseStreamHeader, segmentNonce, type StreamHeader } from './stream-format.js';

const KEY_BYTES = 32;
/** Binds derived keys to the stream format (version 2, algorithm 2); v1's label differs. */
export const STREAM_HKDF_INFO = Buffer.from('ev2 AES-256-GCM STREAM HKDF-SHA-512 key+commitment', 'ascii');

/** okm[0..32) the stream key, okm[32..64) the commitment. The caller zeroes it. */
export function deriveStreamKeyMaterial(dataKey: Buffer, messageId: Buffer): Buffer {
  if (dataKey.length !== KEY_BYTES) throw new RangeError('data key must be 32 bytes');
  return Buffer.from(hkdfSync('sha512', dataKey, messageId, STREAM_HKDF_INFO, 64));
}

export function newMessageId(): Buffer {
  return randomBytes(32);
}

/** Checks the commitment (constant time) and returns the 32-byte stream key; throws on mismatch. */
export function streamKeyFor(dataKey: Buffer, header: Pick<StreamHeader, 'messageId' | 'commitment'>): Buffer {
  const material = deriveStreamKeyMaterial(dataKey, header.messageId);
  try {
    if (!timingSafeEqual(material.subarray(KEY_BYTES), header.commitment)) {
      throw new EnvelopeError('KeyCommitmentMismatch', 'ciphertext does not commit to its data key');
    }
    return Buffer.from(material.subarray(0, KEY_BYTES));
  } finally {
    material.fill(0);
  }
}

/** A stream larger than its limit (STREAM_MAX_BYTES). */
export class StreamTooLargeError extends Error {
  override readonly name = 'StreamTooLargeError';
}

/** A segment failed authentication: `segment` is its index (0-based). */
export class SegmentAuthenticationError extends EnvelopeError {
  constructor(readonly segment: number, detail: string) {
    super('AuthenticationFailed', `stream failed authentication at segment ${segment}: ${detail}`);
  }
}

export interface StreamProgress {
  bytesIn: number;
  bytesOut: number;
  segments: number;
}

/** Pending input bytes, taken in exact amounts. */
class ByteQueue {
  private chunks: Buffer[] = [];
  length = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** The first `n` bytes, as one buffer (a copy when they span chunks). */
  take(n: number): Buffer {
    const first = this.chunks[0];
    if (first && first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.length -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const chunk = this.chunks[0] as Buffer;
      const part = Math.min(chunk.length, n - at);
      chunk.copy(out, at, 0, part);
      at += part;
      if (part === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(part);
    }
    this.length -= n;
    return out;
  }

  /** The first `n` bytes as views of the chunks they are in: no copy. */
  takeViews(n: number): Buffer[] {
    const out: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const chunk = this.chunks[0] as Buffer;
      if (chunk.length <= left) {
        out.push(chunk);
        this.chunks.shift();
        left -= chunk.length;
      } else {
        out.push(chunk.subarray(0, left));
        this.chunks[0] = chunk.subarray(left);
        left = 0;
      }
    }
    this.length -= n;
    return out;
  }

  /** Everything pending (used for the header, at most MAX_STREAM_HEADER_BYTES + a chunk). */
  peekAll(): Buffer {
    if (this.chunks.length !== 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }
}

function associatedData(authenticatedHeader: Buffer, aad: Buffer | undefined): Buffer {
  return aad && aad.length > 0 ? Buffer.concat([authenticatedHeader, aad]) : authenticatedHeader;
}

export interface SealerOptions {
  header: Buffer;
  authenticatedHeader: Buffer;
  /** The stream key (okm[0..32)); the sealer zeroes it when done. */
  streamKey: Buffer;
  segmentSize: number;
  aad: Buffer | undefined;
  maxBytes: number;
  /** Awaited before the last segment is released; a rejection ends the stream with it. */
  beforeEnd?: (progress: StreamProgress) => Promise<void>;
}

/** Plaintext in, the stream ciphertext (header, then segments) out. */
export class StreamSealer extends Transform {
  readonly progress: StreamProgress = { bytesIn: 0, bytesOut: 0, segments: 0 };
  private readonly pending = new ByteQueue();
  private readonly aad: Buffer;
  private headerSent = false;

  constructor(private readonly options: SealerOptions) {
    super();
    this.aad = associatedData(options.authenticatedHeader, options.aad);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.progress.bytesIn += chunk.length;
      if (this.progress.bytesIn > this.options.maxBytes) throw new StreamTooLargeError(`the stream is larger than ${this.options.maxBytes} bytes`);
      this.sendHeader();
      this.pending.push(chunk);
      // Strictly more than a segment: only then is it known that this one is not the last.
      while (this.pending.length > this.options.segmentSize) this.seal(this.pending.takeViews(this.options.segmentSize), false);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.sendHeader();
      const sealed = this.sealToBuffer(this.pending.takeViews(this.pending.length), true);
      const bytesOut = this.progress.bytesOut + sealed.length;
      const end = this.options.beforeEnd?.({ ...this.progress, bytesOut, segments: this.progress.segments + 1 }) ?? Promise.resolve();
      end.then(
        () => {
          this.emitBytes(sealed);
          this.progress.segments++;
          callback();
        },
        (error: unknown) => callback(error as Error),
      );
    } catch (error) {
      callback(error as Error);
    }
  }

  override _destroy(error: Error | null, callback: (error: Error | null) => void): void {
    this.options.streamKey.fill(0);
    callback(error);
  }

  private sendHeader(): void {
    if (this.headerSent) return;
    this.headerSent = true;
    this.emitBytes(this.options.header);
  }

  private seal(plaintext: Buffer[], last: boolean): void {
    this.emitBytes(this.sealToBuffer(plaintext, last));
    this.progress.segments++;
  }

  /**
   * One segment from the input chunks it spans, fed to GCM piece by piece (no copy of the
   * plaintext), written into one buffer with its tag: one chunk, one socket write per segment.
   */
  private sealToBuffer(plaintext: Buffer[], last: boolean): Buffer {
    const cipher = createCipheriv('aes-256-gcm', this.options.streamKey, segmentNonce(this.progress.segments, last), { authTagLength: TAG_BYTES });
    cipher.setAAD(this.aad);
    const length = plaintext.reduce((sum, piece) => sum + piece.length, 0);
    const out = Buffer.allocUnsafe(length + TAG_BYTES);
    let at = 0;
    for (const piece of plaintext) {
      at += cipher.update(piece).copy(out, at);
      // The request's own chunk: nothing else reads it, and it holds plaintext.
      piece.fill(0);
    }
    cipher.final();
    cipher.getAuthTag().copy(out, at);
    return out;
  }

  private emitBytes(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.progress.bytesOut += bytes.length;
    this.push(bytes);
  }
}

export interface OpenerOptions {
  maxBytes: number;
  /**
   * The segment sizes accepted (default: any the format allows). The segment size is not
   * covered by the key commitment: a rewritten one fails only segment 0's tag, after up to
   * that many bytes were held, so a service accepts only the sizes it writes.
   */
  segmentSizes?: readonly number[];
}

export interface OpenerStart {
  streamKey: Buffer;
  aad: Buffer | undefined;
  beforeEnd?: (progress: StreamProgress) => Promise<void>;
}

/**
 * The stream ciphertext in, plaintext out. It first reads the header (`header()`), then waits,
 * holding the input, until `start()` gives it the key (after the caller authorized and
 * unwrapped); `firstSegment()` resolves once segment 0 verified, so a bad aad or a tampered
 * first segment can still be refused with a clean error status.
 */
export class StreamOpener extends Transform {
  readonly progress: StreamProgress = { bytesIn: 0, bytesOut: 0, segments: 0 };
  private readonly pending = new ByteQueue();
  private parsed: StreamHeader | undefined;
  private key: OpenerStart | undefined;
  private aad: Buffer = Buffer.alloc(0);
  private held: (() => void) | undefined;
  private readonly headerReady: Promise<StreamHeader>;
  private readonly firstVerified: Promise<void>;
  private readonly firstArrived: Promise<void>;
  private readonly options: OpenerOptions;
  private resolveArrived!: () => void;
  private rejectArrived!: (error: unknown) => void;
  private resolveHeader!: (header: StreamHeader) => void;
  private rejectHeader!: (error: unknown) => void;
  private resolveFirst!: () => void;
  private rejectFirst!: (error: unknown) => void;

  constructor(options: number | OpenerOptions) {
    super();
    this.options = typeof options === 'number' ? { maxBytes: options } : options;
    this.firstArrived = new Promise((resolve, reject) => {
      this.resolveArrived = resolve;
      this.rejectArrived = reject;
    });
    this.firstArrived.catch(() => undefined);
    this.headerReady = new Promise((resolve, reject) => {
      this.resolveHeader = resolve;
      this.rejectHeader = reject;
    });
    this.firstVerified = new Promise((resolve, reject) => {
      this.resolveFirst = resolve;
      this.rejectFirst = reject;
    });
    // Observed through the promises or the stream's own error; never an unhandled rejection.
    this.headerReady.catch(() => undefined);
    this.firstVerified.catch(() => undefined);
    this.once('error', (error) => {
      this.rejectHeader(error);
      this.rejectArrived(error);
      this.rejectFirst(error);
    });
    this.once('close', () => {
      const closed = new Error('the stream closed');
      this.rejectHeader(closed);
      this.rejectArrived(closed);
      this.rejectFirst(closed);
    });
  }

  header(): Promise<StreamHeader> {
    return this.headerReady;
  }

  /** Resolves once the header and the whole first segment are here (or the stream ended): nothing opened yet. */
  firstSegmentArrived(): Promise<void> {
    return this.firstArrived;
  }

  firstSegment(): Promise<void> {
    return this.firstVerified;
  }

  start(options: OpenerStart): void {
    if (!this.parsed) throw new Error('start() before the header');
    this.key = options;
    this.aad = associatedData(this.parsed.authenticatedHeader, options.aad);
    const resume = this.held;
    this.held = undefined;
    resume?.();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.progress.bytesIn += chunk.length;
    if (this.progress.bytesIn > this.options.maxBytes) return callback(new StreamTooLargeError(`the stream is larger than ${this.options.maxBytes} bytes`));
    this.pending.push(chunk);
    this.step(false, callback);
  }

  override _flush(callback: TransformCallback): void {
    this.step(true, callback);
  }

  override _destroy(error: Error | null, callback: (error: Error | null) => void): void {
    this.key?.streamKey.fill(0);
    callback(error);
  }

  /** Parses the header once enough is here, waits for the key, then opens what it can. */
  private step(ended: boolean, callback: TransformCallback): void {
    try {
      if (!this.parsed) {
        if (!ended && this.pending.length < MAX_STREAM_HEADER_BYTES) return callback();
        const header = parseStreamHeader(this.pending.peekAll());
        if (this.options.segmentSizes && !this.options.segmentSizes.includes(header.segmentSize)) {
          throw new EnvelopeError('MalformedCiphertext', `segment size ${header.segmentSize} is not one this service writes (${this.options.segmentSizes.join(', ')})`);
        }
        this.pending.take(header.length);
        this.parsed = header;
        this.resolveHeader(header);
      }
      const firstHere = ended || this.pending.length >= this.parsed.segmentSize + TAG_BYTES;
      if (firstHere) this.resolveArrived();
      if (!this.key) {
        // Read on until the first segment is here, then hold the input until the key comes.
        if (!firstHere) return callback();
        this.held = () => this.step(ended, callback);
        return;
      }
      const segmentBytes = this.parsed.segmentSize + TAG_BYTES;
      // Strictly more than a segment: only then is it known that this one is not the last.
      while (this.pending.length > segmentBytes) this.open(this.pending.takeViews(segmentBytes - TAG_BYTES), this.pending.take(TAG_BYTES), false);
      if (!ended) return callback();
      this.finish(callback);
    } catch (error) {
      callback(error as Error);
    }
  }

  private finish(callback: TransformCallback): void {
    const index = this.progress.segments;
    const rest = this.pending.length;
    // The last segment: 1..segmentSize plaintext bytes, or none only when it is the only one.
    if (rest < TAG_BYTES || (rest === TAG_BYTES && index > 0)) {
      throw new SegmentAuthenticationError(index, 'the stream is truncated');
    }
    const plaintext = this.decipher(this.pending.takeViews(rest - TAG_BYTES), this.pending.take(TAG_BYTES), index, true);
    const plaintextBytes = plaintext.reduce((sum, piece) => sum + piece.length, 0);
    const end = this.key?.beforeEnd?.({ bytesIn: this.progress.bytesIn, bytesOut: this.progress.bytesOut + plaintextBytes, segments: index + 1 }) ?? Promise.resolve();
    end.then(
      () => {
        this.release(plaintext);
        callback();
      },
      (error: unknown) => {
        for (const piece of plaintext) piece.fill(0);
        callback(error as Error);
      },
    );
  }

  private open(body: Buffer[], tag: Buffer, last: boolean): void {
    this.release(this.decipher(body, tag, this.progress.segments, last));
  }

  /**
   * Opens one segment from the chunks it spans; its plaintext, one piece per input chunk, is
   * returned only if the tag verifies. The pieces are not joined: a copy (and the zeroing of
   * what was copied) per segment would cost more than the extra chunk the socket writes.
   */
  private decipher(body: Buffer[], tag: Buffer, index: number, last: boolean): Buffer[] {
    const key = (this.key as OpenerStart).streamKey;
    const decipher = createDecipheriv('aes-256-gcm', key, segmentNonce(index, last), { authTagLength: TAG_BYTES });
    decipher.setAAD(this.aad);
    decipher.setAuthTag(tag);
    const plaintext = body.map((piece) => decipher.update(piece));
    try {
      decipher.final();
    } catch {
      for (const piece of plaintext) piece.fill(0);
      throw new SegmentAuthenticationError(index, 'tampered, reordered, truncated or extended, or a wrong aad');
    }
    if (index === 0) this.resolveFirst();
    return plaintext;
  }

  private release(plaintext: Buffer[]): void {
    this.progress.segments++;
    for (const piece of plaintext) {
      this.progress.bytesOut += piece.length;
      if (piece.length > 0) this.push(piece);
    }
  }
}
