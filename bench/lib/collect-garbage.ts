/**
 * V8's full collection, for in-process measurements that take several operations in turn.
 * Without it, an operation's round pays for collecting the garbage the operation before it left
 * (the cipher's output buffers live outside V8's heap and are freed by a collection), so
 * whichever operation follows a garbage-heavy one measures more than it costs. Exposed at run
 * time, so the commands need no node flag.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | undefined;

export function collectGarbage(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
}
