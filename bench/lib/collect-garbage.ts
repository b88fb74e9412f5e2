/**
 * V8's full collection, for in-process measurements that take several operations in turn.
 * Without it, an operation's round pays for collecting the garbage the operation before it left
 * (the cipher's output buffers live outside V8's heap and are freed by a collection), so
 * whichever operation follows a garbage-heavy one measures more than it costs. The same
 * collector the migration command uses (src/client/migrate/reclaim.ts).
 */
import { fullCollector } from '../../src/client/migrate/reclaim.js';

export function collectGarbage(): void {
  const gc = fullCollector();
  if (!gc) throw new Error('this runtime does not expose V8\'s gc: in-process rounds would not start on a collected heap');
  gc();
}
