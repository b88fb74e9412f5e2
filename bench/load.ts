/**
 * `npm run load`: how much encrypt traffic the service takes, and whether it takes 80% of that
 * for a minute without a single error.
 *
 *   1. starts the service (src/server.ts, embedded local provider, throwaway keystore and
 *      audit log, dev token) as a child process on a free loopback port, so the load generator
 *      (autocannon, in this process) and the service each have their own CPU;
 *   2. max throughput: POST /v1/encrypt with a 1 KiB payload, as fast as `--connections`
 *      connections go, for `--max-seconds` (10);
 *   3. sustained: `--fraction` (0.8) of that rate (autocannon overallRate) for
 *      `--sustain-seconds` (60); reports errors, timeouts, non-2xx, latency p50/p99;
 *   4. stops the service. Exit status 1 if the sustained phase saw any error or non-2xx.
 *
 *   npm run load
 *   npm run load -- --max-seconds 5 --sustain-seconds 20 --connections 20 --size 4096
 *
 * Bounded: loopback only, fixed durations, the service is always stopped. The rate limit is
 * raised for the run (the default 60,000/min per principal would be the bottleneck), every
 * other setting is the default, the audit log included (a real file, written per request).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

export const REPO_ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
export const TOKEN = 'bench-load-token';

// ---- autocannon (no bundled types: the part of its API used here) ----------------------------

export interface LatencyStats {
  average: number;
  p50: number;
  p90: number;
  p99: number;
  p99_9?: number;
  max: number;
}
export interface CannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  latency: LatencyStats;
  requests: { average: number; total: number; sent: number };
  statusCodeStats: Record<string, { count: number }>;
}
export interface CannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
  setupRequest?: (request: CannonRequest) => CannonRequest;
}
export interface CannonOptions {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  connections?: number;
  duration?: number;
  overallRate?: number;
  timeout?: number;
  requests?: CannonRequest[];
}
const cannon = createRequire(import.meta.url)('autocannon') as (options: CannonOptions) => PromiseLike<CannonResult>;
/** autocannon's run as a real Promise (it returns a thenable instance). */
export const autocannon = (options: CannonOptions): Promise<CannonResult> => Promise.resolve(cannon(options));

// ---- the service as a child process ------------------------------------------------------------

export interface Service {
  url: string;
  pid: number;
  /** Service stdout/stderr (warnings and errors only at LOG_LEVEL=warn). */
  output(): string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => done(port));
    });
  });
}

/** Starts src/server.ts with the default configuration plus `env`, and waits for /readyz. */
export async function startService(env: Record<string, string> = {}, startTimeoutMs = 60_000): Promise<Service> {
  const dir = mkdtempSync(join(tmpdir(), 'envelope-bench-'));
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src/server.ts')], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      // Not production: dev mode (DEV_TOKEN, no POLICY_FILE) is refused there.
      NODE_ENV: 'development',
      HOST: '127.0.0.1',
      PORT: String(port),
      KMS_PROVIDER: 'local',
      LOCAL_KEYSTORE: join(dir, 'keystore.json'),
      AUDIT_LOG: join(dir, 'audit.log'),
      DEV_TOKEN: TOKEN,
      LOG_LEVEL: 'warn',
      RATE_LIMIT_MAX: '10000000',
      // --connections goes to 1000 and --size to 4 MiB (in JSON): above the per-principal defaults.
      MAX_IN_FLIGHT_PER_PRINCIPAL: '1000000',
      JSON_BODY_LIMIT_BYTES: String(8 * 1024 * 1024),
      // One principal drives every load (and the soak's distinct contexts): no KMS budget.
      KMS_BUDGET_PER_SECOND: '100000',
      KMS_BUDGET_BURST: '100000',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-32_768);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const stop = async (): Promise<void> => {
    process.off('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((done) => child.once('exit', () => done()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`the service exited during start:\n${output}`);
    }
    try {
      const response = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2_000) });
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the service was not ready within ${startTimeoutMs} ms:\n${output}`);
    }
    await new Promise((done) => setTimeout(done, 200));
  }
  return { url, pid: child.pid!, output: () => output, stop };
}

export const authHeaders = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

export function summarize(result: CannonResult): Record<string, number> {
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

// ---- main ----------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      'max-seconds': { type: 'string', default: '10' },
      'sustain-seconds': { type: 'string', default: '60' },
      fraction: { type: 'string', default: '0.8' },
      connections: { type: 'string', default: '50' },
      size: { type: 'string', default: '1024' },
    },
  });
  const maxSeconds = Number(values['max-seconds']);
  const sustainSeconds = Number(values['sustain-seconds']);
  const fraction = Number(values.fraction);
  const connections = Number(values.connections);
  const size = Number(values.size);
  for (const [name, value, max] of [
    ['--max-seconds', maxSeconds, 600],
    ['--sustain-seconds', sustainSeconds, 3_600],
    ['--fraction', fraction, 1],
    ['--connections', connections, 1_000],
    ['--size', size, 4 * 1024 * 1024],
  ] as const) {
    if (!(value > 0 && value <= max)) throw new Error(`${name} must be in (0, ${max}]`);
  }

  const body = JSON.stringify({ plaintext: Buffer.alloc(size, 0x5a).toString('base64'), context: { tenant: 'bench', purpose: 'load' } });
  const service = await startService();
  console.log(`service pid ${service.pid} on ${service.url}; payload ${size} B; ${connections} connections`);
  try {
    const target = { url: `${service.url}/v1/encrypt`, method: 'POST', headers: authHeaders, body, connections, timeout: 10 };
    // A short warm-up so JIT and the first data key are not in the measurement.
    await autocannon({ ...target, duration: 2 });

    console.log(`\n1. max throughput: ${maxSeconds} s as fast as ${connections} connections go`);
    const max = await autocannon({ ...target, duration: maxSeconds });
    const maxSummary = summarize(max);
    console.table(maxSummary);
    const rate = Math.max(1, Math.floor(max.requests.average * fraction));

    console.log(`\n2. sustained: ${sustainSeconds} s at ${Math.round(fraction * 100)}% = ${rate} requests/s (overallRate)`);
    const sustained = await autocannon({ ...target, duration: sustainSeconds, overallRate: rate });
    const sustainedSummary = summarize(sustained);
    console.table(sustainedSummary);

    const failures = sustained.errors + sustained.timeouts + sustained.non2xx;
    const report = {
      payloadBytes: size,
      connections,
      max: maxSummary,
      sustained: { targetRate: rate, ...sustainedSummary, statusCodes: sustained.statusCodeStats },
      ok: failures === 0,
    };
    console.log(`\nRESULT ${JSON.stringify(report)}`);
    if (failures > 0) {
      console.error(`sustained phase: ${sustained.errors} errors, ${sustained.timeouts} timeouts, ${sustained.non2xx} non-2xx`);
      const log = service.output().trim();
      if (log) console.error(`service output (tail):\n${log.slice(-4_000)}`);
      return 1;
    }
    return 0;
  } finally {
    await service.stop();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(error);
      process.exit(2);
    },
  );
}
