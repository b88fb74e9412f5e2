/**
 * Keeps a long migration's memory flat. Every chunk of a stream passes through several fresh
 * Buffers (read, deciphered, sealed, read back, opened) that die at once but are outside V8's
 * heap: V8 collects them only once enough such memory has piled up, and for a long stream that
 * peak is the command's memory growth. A full collection every `everyBytes` (cheap: the heap
 * itself stays small) frees them long before (the figures: docs/BENCHMARKS.md, envelope
 * migrate). When the runtime does not let `gc` be exposed, nothing is done and memory is V8's
 * default.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export const RECLAIM_EVERY_BYTES = 4 * 1024 * 1024;

let collect: (() => void) | null | undefined;

/** V8's full collection, exposed at run time (no node flag needed); null where the runtime refuses. */
export function fullCollector(): (() => void) | null {
  if (collect !== undefined) return collect;
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as unknown;
    collect = typeof gc === 'function' ? () => (gc as () => void)() : null;
  } catch {
    collect = null;
  }
  return collect;
}

/** A counter to call with each chunk's size: it collects once per `everyBytes`. */
export function reclaimer(everyBytes = RECLAIM_EVERY_BYTES): (bytes: number) => void {
  const gc = fullCollector();
  if (!gc) return () => undefined;
  let since = 0;
  return (bytes) => {
    since += bytes;
    if (since < everyBytes) return;
    since = 0;
    gc();
  };
}
