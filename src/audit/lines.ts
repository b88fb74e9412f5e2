/**
 * Streams a file as raw byte lines split on '\n' only.
 *
 * Not node:readline: readline also splits on a lone '\r' and strips '\r' before '\n', and
 * decodes UTF-8 lossily, so the bytes it hands back are not always the bytes on disk. The
 * chain hashes exact bytes, so the verifier must see exact bytes.
 */
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';

const NEWLINE = 0x0a;

export interface RawLine {
  /** 1-based line number. */
  number: number;
  /** The line's bytes without the newline. */
  bytes: Buffer;
  /** False only for a last line with no trailing newline. */
  terminated: boolean;
  /** When several files are read as one log: the file the line is in. */
  file?: string;
  /** When several files are read as one log: true for the first line of every file but the first. */
  startsFile?: boolean;
}

export class LineTooLongError extends Error {
  override readonly name = 'LineTooLongError';
  /** Set when several files are read as one log. */
  file?: string;
  constructor(
    readonly lineNumber: number,
    readonly maxBytes: number,
  ) {
    super(`line ${lineNumber} is longer than ${maxBytes} bytes`);
  }
}

/**
 * Reads several files as one log, in the order given (oldest first), each line tagged with
 * its file and its line number in that file. A file named *.gz is decompressed on the fly
 * (logrotate's `compress`).
 */
export async function* readFileSet(paths: readonly string[], maxLineBytes: number): AsyncGenerator<RawLine> {
  for (const [index, path] of paths.entries()) {
    let first = index > 0;
    try {
      for await (const line of readLines(path, maxLineBytes)) {
        yield { ...line, file: path, startsFile: first };
        first = false;
      }
    } catch (error) {
      if (error instanceof LineTooLongError) error.file = path;
      throw error;
    }
  }
}

export async function* readLines(path: string, maxLineBytes: number): AsyncGenerator<RawLine> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let number = 0;
  const raw = createReadStream(path, { highWaterMark: 256 * 1024 });
  const stream = path.endsWith('.gz') ? raw.pipe(createGunzip()).on('close', () => raw.destroy()) : raw;
  raw.on('error', (error) => stream !== raw && stream.destroy(error));
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let start = 0;
    for (let index = chunk.indexOf(NEWLINE); index !== -1; index = chunk.indexOf(NEWLINE, start)) {
      const piece = chunk.subarray(start, index);
      number += 1;
      if (pendingBytes + piece.length > maxLineBytes) throw new LineTooLongError(number, maxLineBytes);
      const bytes = pending.length === 0 ? piece : Buffer.concat([...pending, piece]);
      pending = [];
      pendingBytes = 0;
      start = index + 1;
      yield { number, bytes, terminated: true };
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      pendingBytes += rest.length;
      if (pendingBytes > maxLineBytes) throw new LineTooLongError(number + 1, maxLineBytes);
      pending.push(rest);
    }
  }
  if (pendingBytes > 0) {
    number += 1;
    yield { number, bytes: Buffer.concat(pending), terminated: false };
  }
}
