/**
 * Pinning processes to CPUs (Linux taskset), for a case that measures what one process's load
 * costs another: the service gets a CPU of its own and everything else (load generators,
 * local-kms, which stands in for a KMS that runs elsewhere in production) shares the rest, so
 * the generators' and local-kms's CPU is not taken from the service being measured. Within
 * the shared CPUs, `lowerPriority` lets the measuring generator go first, as it would on a
 * machine of its own.
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism, setPriority } from 'node:os';

export interface CpuSplit {
  /** taskset CPU lists. */
  service: string;
  others: string;
  all: string;
}

/** The split, or why there is none (one CPU, or no taskset). */
export function cpuSplit(): CpuSplit | { missing: string } {
  const cpus = availableParallelism();
  if (cpus < 2) return { missing: 'one CPU: nothing to split' };
  if (spawnSync('taskset', ['--version']).status !== 0) return { missing: 'taskset not found' };
  return { service: '0', others: cpus === 2 ? '1' : `1-${cpus - 1}`, all: `0-${cpus - 1}` };
}

/** Pins every thread of `pid` to `cpus`; false when taskset refused. */
export function pin(pid: number, cpus: string): boolean {
  return spawnSync('taskset', ['--all-tasks', '--cpu-list', '--pid', cpus, String(pid)], { stdio: 'ignore' }).status === 0;
}

/** Sets `pid`'s nice value (10: yields to default-priority processes); false when refused. */
export function niceness(pid: number, value: number): boolean {
  try {
    setPriority(pid, value);
    return true;
  } catch {
    return false;
  }
}
