/**
 * The real service process for ops tests: `node --import tsx src/server.ts`, exactly the entry
 * point `npm start` runs (minus the build), with an environment the test writes in full.
 *
 * - The child gets a clean environment (PATH, HOME and the test's variables only), so nothing
 *   from the developer's shell or CI (a stray PORT, KMS_PROVIDER, AWS_PROFILE) changes it.
 * - PORT=0 by default: the service binds a free loopback port and the helper reads it from
 *   Fastify's "Server listening at" log line, so there is no pick-then-bind race.
 * - node is the direct child (no npx/tsx wrapper process), so signals reach the server itself,
 *   as they reach PID 1 in the container.
 * - Every child is SIGKILLed when the test process exits, whatever happened.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { reapOnExit } from '../../helpers/reap-children.js';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));
const SERVER_ENTRY = join(REPO_ROOT, 'src', 'server.ts');

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServiceProcess {
  child: ChildProcess;
  /** http://127.0.0.1:<port>, once listening. */
  baseUrl: string;
  port: number;
  /** stdout so far, as lines (pino JSON lines in this mode). */
  stdoutLines(): string[];
  /** stdout lines parsed as JSON (non-JSON lines skipped). */
  logRecords(): Record<string, unknown>[];
  stderr(): string;
  exited: Promise<Exit>;
  signal(signal: NodeJS.Signals): void;
  /** SIGTERM, and wait (SIGKILL after `timeoutMs`). */
  stop(timeoutMs?: number): Promise<Exit>;
}

/** The environment a child gets: only what it needs to run, plus `env`. */
export function childEnv(env: Record<string, string>): Record<string, string> {
  const base: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' };
  if (process.env.TMPDIR) base.TMPDIR = process.env.TMPDIR;
  return { ...base, ...env };
}

/** Spawns the service; resolves nothing, see startService / runUntilExit. */
export function spawnService(env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER_ENTRY], {
    cwd: REPO_ROOT,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  reapOnExit(child);
  return child;
}

/** Runs the service until it exits by itself (bad configuration); kills it after `timeoutMs`. */
export async function runUntilExit(
  env: Record<string, string>,
  timeoutMs = 40_000,
): Promise<Exit & { stdout: string; stderr: string; timedOut: boolean }> {
  const child = spawnService(env);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  const exit = await exitOf(child);
  clearTimeout(timer);
  return { ...exit, stdout, stderr, timedOut };
}

/** Starts the service and waits until it listens. */
export async function startService(env: Record<string, string>, startTimeoutMs = 30_000): Promise<ServiceProcess> {
  // No event-loop shedding unless a test sets it: a fresh process on a busy CI machine can lag
  // above the default 1 s for its first seconds and answer 503 Overloaded to a test's request.
  const child = spawnService({ PORT: '0', HOST: '127.0.0.1', MAX_EVENT_LOOP_DELAY_MS: '0', ...env });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = exitOf(child);

  const deadline = Date.now() + startTimeoutMs;
  let port = 0;
  for (;;) {
    const match = /"msg":"Server listening at http:\/\/127\.0\.0\.1:(\d+)"/.exec(stdout);
    if (match?.[1]) {
      port = Number(match[1]);
      break;
    }
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`service exited during start (${child.exitCode ?? child.signalCode}):\n${stderr}\n${stdout}`);
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`service did not listen within ${startTimeoutMs} ms:\n${stderr}\n${stdout}`);
    }
    await sleep(20);
  }

  const lines = () => stdout.split('\n').filter(Boolean);
  return {
    child,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    stdoutLines: lines,
    logRecords: () =>
      lines().flatMap((line) => {
        try {
          return [JSON.parse(line) as Record<string, unknown>];
        } catch {
          return [];
        }
      }),
    stderr: () => stderr,
    exited,
    signal: (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    async stop(timeoutMs = 15_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const exit = await exited;
      clearTimeout(timer);
      return exit;
    },
  };
}

function exitOf(child: ChildProcess): Promise<Exit> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  // 'close', not 'exit': 'exit' can come before the last of stdout and stderr has been read, and
  // a test that reads the process's message after its exit would then find it empty.
  return new Promise((done) => child.once('close', (code, signal) => done({ code, signal })));
}

/** A temp directory for a keystore and an audit log; remove() deletes it. */
export function tempDir(prefix = 'envelope-ops-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}
