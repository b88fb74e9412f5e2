/** Inputs: a file (its size known: Content-Length, progress) or standard input (IN left out, or `-`). */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';

export interface Input {
  /** The path, or `-` for standard input. */
  name: string;
  stream: Readable;
  /** Bytes, when the input is a regular file. */
  size: number | undefined;
}

export async function openInput(path: string | undefined, stdin: NodeJS.ReadableStream): Promise<Input> {
  if (path === undefined || path === '-') return { name: '-', stream: Readable.from(stdin as AsyncIterable<Buffer>, { objectMode: false }), size: undefined };
  const info = await stat(path);
  if (info.isDirectory()) throw Object.assign(new Error(`${path} is a directory`), { code: 'EISDIR' });
  return { name: path, stream: createReadStream(path, { highWaterMark: 256 * 1024 }), size: info.isFile() ? info.size : undefined };
}

/**
 * Where each input goes. One input: `-o OUT`, or standard output. Several: each beside its input,
 * named by `rename` (e.g. `report.pdf` -> `report.pdf.ev2`); -o is then refused.
 */
export function targetsFor(inputs: string[], output: string | undefined, rename: (input: string) => string): (string | undefined)[] {
  if (inputs.length <= 1) return [output === '-' ? undefined : output];
  return inputs.map(rename);
}
