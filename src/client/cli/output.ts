/**
 * Output safety. To a file: the bytes go to a temporary file beside the target (same
 * directory, so the rename is atomic; mode 0600), renamed over the target only once the whole
 * stream ended cleanly, which for a decrypt means its last segment verified. Any failure
 * removes the temporary file: no partial plaintext is left behind. To stdout: bytes are written
 * as they are verified, and a failure exits non-zero after the last verified segment, so a
 * pipeline must check the command's status (`set -o pipefail`).
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/** Writes `source` to `target` (a path) or to `stdout` (target undefined); `tap` sees every chunk (progress). */
export async function writeOutput(source: Readable, target: string | undefined, stdout: NodeJS.WritableStream, tap?: (bytes: number) => void): Promise<void> {
  const stages: (Readable | Writable | Transform)[] = [source];
  if (tap) stages.push(counter(tap));
  if (target === undefined) {
    await pipeline([...stages, stdout as Writable], { end: false });
    return;
  }
  const temporary = join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}.partial`);
  try {
    await pipeline([...stages, createWriteStream(temporary, { flags: 'wx', mode: 0o600 })]);
    await rename(temporary, target);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

function counter(tap: (bytes: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      tap(chunk.length);
      callback(null, chunk);
    },
  });
}
