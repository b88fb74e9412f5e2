/**
 * Jaeger for tests: a private instance on free loopback ports (test/fixtures/jaeger.yaml:
 * OTLP over HTTP in, memory storage, the query API over HTTP), and reading a trace back from
 * its HTTP query API (`/api/traces/{traceId}`, the JSON the Jaeger UI reads).
 *
 * Binary lookup order: $JAEGER_BIN, .tools/jaeger/bin/jaeger, `jaeger` on PATH (as
 * scripts/jaeger.sh, which builds it: `scripts/jaeger.sh install`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { reapOnExit } from './reap-children.js';

const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const CONFIG = join(REPO_ROOT, 'test', 'fixtures', 'jaeger.yaml');

export function findJaegerBinary(): string | undefined {
  const fromEnv = process.env.JAEGER_BIN;
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  const tools = join(REPO_ROOT, '.tools', 'jaeger', 'bin', 'jaeger');
  if (existsSync(tools)) return tools;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'jaeger'))) return join(dir, 'jaeger');
  }
  return undefined;
}

export interface JaegerInstance {
  /** OTLP/HTTP base URL, for OTEL_EXPORTER_OTLP_ENDPOINT. */
  otlpEndpoint: string;
  queryUrl: string;
  /** Its log so far (warnings and errors only). */
  output(): string;
  stop(): Promise<void>;
}

export async function startJaeger(binary: string, startTimeoutMs = 60_000): Promise<JaegerInstance> {
  const [otlp, query, queryGrpc, health] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const child = spawn(binary, ['--config', CONFIG], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      JAEGER_OTLP_HTTP_PORT: String(otlp),
      JAEGER_QUERY_PORT: String(query),
      JAEGER_QUERY_GRPC_PORT: String(queryGrpc),
      JAEGER_HEALTH_PORT: String(health),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  reapOnExit(child);
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-32_768);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);

  const deadline = Date.now() + startTimeoutMs;
  while (!(await answers(`http://127.0.0.1:${health}/status`))) {
    if (child.exitCode !== null) throw new Error(`jaeger exited with code ${child.exitCode} during start:\n${output}`);
    if (Date.now() > deadline) {
      await terminate(child);
      throw new Error(`jaeger was not healthy within ${startTimeoutMs} ms:\n${output}`);
    }
    await sleep(100);
  }
  return {
    otlpEndpoint: `http://127.0.0.1:${otlp}`,
    queryUrl: `http://127.0.0.1:${query}`,
    output: () => output,
    stop: () => terminate(child),
  };
}

/** A span as the query API returns it (the fields the tests read). */
export interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references: { refType: string; traceID: string; spanID: string }[];
  tags: { key: string; type: string; value: unknown }[];
  startTime: number;
  duration: number;
}

export interface JaegerTrace {
  /** The answer's JSON as received: what a search for forbidden values reads. */
  raw: string;
  spans: JaegerSpan[];
}

/** The trace, or undefined while Jaeger does not know it. */
export async function fetchTrace(queryUrl: string, traceId: string): Promise<JaegerTrace | undefined> {
  const response = await fetch(`${queryUrl}/api/traces/${traceId}`, { signal: AbortSignal.timeout(5_000) });
  const raw = await response.text();
  if (response.status === 404) return undefined;
  if (!response.ok) throw new Error(`jaeger query answered ${response.status}: ${raw}`);
  const body = JSON.parse(raw) as { data?: { spans: JaegerSpan[] }[] };
  const spans = (body.data ?? []).flatMap((trace) => trace.spans);
  return spans.length ? { raw, spans } : undefined;
}

/**
 * Polls until the trace holds every span named in `names`, a name given twice twice (spans
 * arrive in batches).
 */
export async function waitForTrace(queryUrl: string, traceId: string, names: string[], timeoutMs = 60_000): Promise<JaegerTrace> {
  const deadline = Date.now() + timeoutMs;
  const wanted = new Map<string, number>();
  for (const name of names) wanted.set(name, (wanted.get(name) ?? 0) + 1);
  for (;;) {
    const last = await fetchTrace(queryUrl, traceId);
    const seen = new Map<string, number>();
    for (const span of last?.spans ?? []) seen.set(span.operationName, (seen.get(span.operationName) ?? 0) + 1);
    const missing = [...wanted].filter(([name, count]) => (seen.get(name) ?? 0) < count).map(([name]) => name);
    if (last && missing.length === 0) return last;
    if (Date.now() > deadline) throw new Error(`trace ${traceId} lacks ${missing.join(', ')} after ${timeoutMs} ms; has ${[...seen.keys()].join(', ')}`);
    await sleep(200);
  }
}

export const tagsOf = (span: JaegerSpan): Record<string, unknown> => Object.fromEntries(span.tags.map((tag) => [tag.key, tag.value]));
export const parentOf = (span: JaegerSpan): string | undefined => span.references.find((ref) => ref.refType === 'CHILD_OF')?.spanID;

async function answers(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(1_000) })).ok;
  } catch {
    return false;
  }
}

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => done(port));
    });
  });
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}
