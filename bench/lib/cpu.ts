/**
 * CPU time a process has used (user + system), from /proc on Linux. On a shared two-core
 * machine, "server CPU per request" is steadier than requests per second, which also depends
 * on what else is running; both are reported. Returns undefined where /proc is unavailable.
 */
import { readFileSync } from 'node:fs';

/** Linux USER_HZ: 100 on every mainstream kernel configuration. */
const CLOCK_TICKS_PER_SECOND = 100;

export function processCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; fields after its closing ')' are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
    return (utime + stime) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}
