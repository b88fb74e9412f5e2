/**
 * Child processes a test starts (local-kms, the service) must never outlive the test process,
 * even when it exits without running its teardown (a crash, a timeout kill).
 */
import type { ChildProcess } from 'node:child_process';

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** SIGKILLs `child` when the test process exits, unless it has exited first. */
export function reapOnExit(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const running of live) running.kill('SIGKILL');
    });
  }
  live.add(child);
  child.once('exit', () => live.delete(child));
}
