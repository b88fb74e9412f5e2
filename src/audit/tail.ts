/**
 * Reads the last lines of a (possibly multi-gigabyte) file without loading it: only a window
 * of bytes at the end is read, with positional reads on an already open descriptor.
 */
import { readSync } from 'node:fs';

const NEWLINE = 0x0a;

export interface Tail {
  /** Lines fully inside the window, oldest first, without their newlines. */
  lines: Buffer[];
  /** Whether the file ends with a newline (false: the last line is a partial write). */
  terminated: boolean;
  /** Whether the window reaches the start of the file (so lines[0] is a whole line). */
  reachedStart: boolean;
}

/**
 * Splits the last `windowBytes` of the file into lines. If the window does not start at
 * offset 0, its first fragment is dropped: it is probably the end of a longer line. An empty
 * `lines` therefore means "the last line is longer than the window".
 */
export function readTail(fd: number, fileSize: number, windowBytes: number): Tail {
  const length = Math.min(windowBytes, fileSize);
  const start = fileSize - length;
  const buffer = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const read = readSync(fd, buffer, filled, length - filled, start + filled);
    if (read === 0) break; // the file shrank under us; work with what we have
    filled += read;
  }
  const window = buffer.subarray(0, filled);
  const reachedStart = start === 0;
  const terminated = window.length > 0 && window[window.length - 1] === NEWLINE;
  const content = terminated ? window.subarray(0, window.length - 1) : window;

  const lines: Buffer[] = [];
  let lineStart = 0;
  for (let index = content.indexOf(NEWLINE); index !== -1; index = content.indexOf(NEWLINE, lineStart)) {
    lines.push(content.subarray(lineStart, index));
    lineStart = index + 1;
  }
  lines.push(content.subarray(lineStart));
  if (!reachedStart) lines.shift();
  return { lines, terminated, reachedStart };
}
