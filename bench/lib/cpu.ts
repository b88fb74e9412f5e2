/**
 * CPU time a process has used, user and system apart, from /proc on Linux. On a shared two-core
 * machine, "server CPU per request" is steadier than requests per second, which also depends
 * on what else is running; both are reported. Undefined where /proc is unavailable.
 *
 * The two halves say different things on loopback: user time is the server's own code; system
 * time also holds the kernel's delivery of each response to the client's socket, which the
 * sender pays, waking the client included (docs/BENCHMARKS.md, CPU per request).
 */
import { readFileSync } from 'node:fs';

/** Linux USER_HZ: 100 on every mainstream kernel configuration. */
const CLOCK_TICKS_PER_SECOND = 100;

export interface CpuTimes {
  userSeconds: number;
  systemSeconds: number;
}

export function processCpuTimes(pid: number): CpuTimes | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; fields after its closing ')' are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
    return { userSeconds: utime / CLOCK_TICKS_PER_SECOND, systemSeconds: stime / CLOCK_TICKS_PER_SECOND };
  } catch {
    return undefined;
  }
}

/** Server CPU per request between two readings, µs: user + system, and each half. */
export interface CpuPerRequest {
  serverCpuUsPerRequest: number;
  serverUserUsPerRequest: number;
  serverSystemUsPerRequest: number;
}

export function cpuPerRequest(before: CpuTimes | undefined, after: CpuTimes | undefined, requests: number): CpuPerRequest | Record<string, never> {
  if (!before || !after || requests <= 0) return {};
  const perRequest = (seconds: number) => Math.round((seconds * 1e7) / requests) / 10;
  const user = after.userSeconds - before.userSeconds;
  const system = after.systemSeconds - before.systemSeconds;
  return {
    serverCpuUsPerRequest: perRequest(user + system),
    serverUserUsPerRequest: perRequest(user),
    serverSystemUsPerRequest: perRequest(system),
  };
}
