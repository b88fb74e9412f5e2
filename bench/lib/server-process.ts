/**
 * The one way the bench starts a server: a child process (node on the tsc build of
 * bench/servers/*.ts, server-build.ts; or the source through tsx),
 * so the server's CPU is not the load generator's. Output goes to a log file (the service logs JSON lines, as in production);
 * readiness and the port come over the IPC channel.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ReadyMessage } from '../servers/common.js';
import { REPO_ROOT } from './constants.js';
import { builtServer, type BuildKind } from './server-build.js';

export interface ServerProcess {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  readonly logFile: string;
  stop(): Promise<void>;
}

export interface StartServerOptions {
  name: string;
  /** Path under bench/servers, e.g. 'service.ts'. */
  script: string;
  env: Record<string, string>;
  /** Directory for the log file (and the CPU profile when cpuProfileDir is set). */
  workDir: string;
  /** Run with `node --cpu-prof` and write the .cpuprofiles (one per thread) here on exit. */
  cpuProfileDir?: string;
  /** Run the tsc build of the script (server-build.ts) instead of the source through tsx. */
  built?: boolean;
  /** The standard service, or the one with tracing compiled out (server-build.ts; from source, bench/stripped/register.mjs). */
  buildKind?: BuildKind;
  /** Another node binary than the runner's, and flags before the script. */
  nodeBinary?: string;
  nodeFlags?: string[];
  startTimeoutMs?: number;
}

/** From source, tracing is compiled out by a module hook instead of a second build. */
const STRIPPED_SOURCE_HOOK = pathToFileURL(join(REPO_ROOT, 'bench', 'stripped', 'register.mjs')).href;

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export async function startServer(options: StartServerOptions): Promise<ServerProcess> {
  const logFile = join(options.workDir, `${options.name}.log`);
  const logFd = openSync(logFile, 'a');
  const nodeArgs = [
    // One profile per thread (tsx's module hooks run on a worker thread); default names, which
    // carry the thread id, so the main thread's profile is not overwritten (see mainThreadProfile).
    ...(options.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`] : []),
    ...(options.nodeFlags ?? []),
    ...(options.built
      ? [builtServer(options.script, options.buildKind)]
      : ['--import', 'tsx', ...(options.buildKind === 'stripped' ? ['--import', STRIPPED_SOURCE_HOOK] : []), join(REPO_ROOT, 'bench', 'servers', options.script)]),
  ];
  const child = spawn(options.nodeBinary ?? process.execPath, nodeArgs, {
    cwd: REPO_ROOT,
    // Every server listens on a free loopback port (servers/common.ts); PORT and HOST say the same
    // to the service's config.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_ENV: 'production', PORT: '0', HOST: '127.0.0.1', ...options.env },
    stdio: ['ignore', logFd, logFd, 'ipc'],
  });
  closeSync(logFd);
  live.add(child);
  child.once('exit', () => live.delete(child));

  const timeoutMs = options.startTimeoutMs ?? 60_000;
  const ready = await new Promise<ReadyMessage>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${options.name}: not ready after ${timeoutMs} ms`)), timeoutMs);
    child.on('message', (message: ReadyMessage) => {
      if (message?.type === 'ready') {
        clearTimeout(timer);
        resolve(message);
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${options.name}: exited during start (code ${code}, signal ${signal})`));
    });
  }).catch((error: Error) => {
    child.kill('SIGKILL');
    throw new Error(`${error.message}; log tail:\n${tail(logFile)}`);
  });

  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  };
  return { name: options.name, url: `http://127.0.0.1:${ready.port}`, pid: ready.pid, logFile, stop };
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').slice(-4_000);
  } catch {
    return '(no log)';
  }
}

/** The main thread's profile among `node --cpu-prof`'s files: CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile, tid 0. */
export function mainThreadProfile(files: string[], pid: number): string | undefined {
  return files.find((file) => new RegExp(`^CPU\\.\\d+\\.\\d+\\.${pid}\\.0\\.\\d+\\.cpuprofile$`).test(file));
}
