/**
 * One HTTP measurement: autocannon (in the runner's process) against a server child, a warm-up
 * pass that is thrown away, then the measured pass. A run with any error, timeout or non-2xx
 * answer fails loudly: a benchmark that quietly measured 401s or 429s is worse than none.
 */
import autocannon, { type Result } from 'autocannon';
import { cpuPerRequest, processCpuTimes } from './cpu.js';

export interface LoadSpec {
  url: string;
  method?: 'POST' | 'GET';
  headers?: Record<string, string>;
  body?: string | Buffer;
  connections: number;
  warmupSeconds: number;
  durationSeconds: number;
  /** The server's pid, to report its CPU time per request. */
  serverPid?: number;
}

export interface HttpMeasurement {
  requestsPerSecond: number;
  requestsTotal: number;
  latencyMs: { p50: number; p99: number; mean: number };
  /** Server CPU (user + system) per request, microseconds; undefined where /proc is missing. */
  serverCpuUsPerRequest?: number;
  /** Its two halves (lib/cpu.ts says what each holds on loopback). */
  serverUserUsPerRequest?: number;
  serverSystemUsPerRequest?: number;
  connections: number;
  durationSeconds: number;
  requestBytes: number;
}

export async function measureHttp(spec: LoadSpec): Promise<HttpMeasurement> {
  const options = {
    url: spec.url,
    method: spec.method ?? 'POST',
    headers: spec.headers ?? {},
    ...(spec.body !== undefined ? { body: spec.body } : {}),
    connections: spec.connections,
    timeout: 30,
  };
  if (spec.warmupSeconds > 0) check(await autocannon({ ...options, duration: spec.warmupSeconds }), `${spec.url} (warm-up)`);
  const cpuBefore = spec.serverPid ? processCpuTimes(spec.serverPid) : undefined;
  const result = check(await autocannon({ ...options, duration: spec.durationSeconds }), spec.url);
  const cpuAfter = spec.serverPid ? processCpuTimes(spec.serverPid) : undefined;
  const total = result['2xx'];
  return {
    requestsPerSecond: round(total / result.duration, 1),
    requestsTotal: total,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, mean: round(result.latency.mean, 2) },
    ...cpuPerRequest(cpuBefore, cpuAfter, total),
    connections: spec.connections,
    durationSeconds: round(result.duration, 2),
    requestBytes: spec.body === undefined ? 0 : Buffer.byteLength(spec.body),
  };
}

function check(result: Result, what: string): Result {
  const codes = Object.entries(result.statusCodeStats)
    .filter(([code]) => !code.startsWith('2'))
    .map(([code, stat]) => `${code}x${stat.count}`);
  if (result.errors > 0 || result.timeouts > 0 || result.non2xx > 0 || result['2xx'] === 0) {
    throw new Error(
      `${what}: ${result['2xx']} ok, ${result.non2xx} non-2xx [${codes.join(', ')}], ${result.errors} errors, ${result.timeouts} timeouts`,
    );
  }
  return result;
}

/** An autocannon result as the table `load` and `soak` print. */
export function summarize(result: Result): Record<string, number> {
  return {
    requestsPerSecond: Math.round(result.requests.average),
    requests: result.requests.total,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    latencyP50ms: result.latency.p50,
    latencyP99ms: result.latency.p99,
    latencyMaxMs: result.latency.max,
  };
}

export function round(value: number, digits = 0): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
