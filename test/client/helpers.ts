/**
 * Shared by the client tests: a service listening on loopback (a free port), the `envelope`
 * command run as a real process exactly as an operator runs it (`npm run envelope`: tsx), and
 * a client of the library pointed at the service.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EnvelopeClient } from '../../src/client/index.js';
import { DEV_TOKEN, buildTestApp, type TestApp, type TestAppOptions } from '../helpers/app.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const MAIN = join(ROOT, 'src/client/cli/main.ts');

export interface ListeningApp extends TestApp {
  url: string;
}

export async function listeningApp(options: TestAppOptions = {}): Promise<ListeningApp> {
  const t = await buildTestApp(options);
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const address = t.app.server.address();
  if (!address || typeof address === 'string') throw new Error('no TCP address');
  return Object.assign(t, { url: `http://127.0.0.1:${address.port}` });
}

export function clientFor(app: { url: string }, token = DEV_TOKEN): EnvelopeClient {
  return new EnvelopeClient({ baseUrl: app.url, token, retry: { maxAttempts: 1 } });
}

export interface Ran {
  status: number | null;
  stdout: Buffer;
  stderr: string;
}

/**
 * Runs `envelope ARGS` in a child process (asynchronously: the service answering it runs in this
 * process). `stdin` is piped in when given; the environment has the URL and token unless overridden.
 */
export function envelope(args: string[], options: { app?: { url: string }; env?: Record<string, string | undefined>; stdin?: Buffer } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string | undefined> = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...(options.app ? { ENVELOPE_URL: options.app.url, ENVELOPE_TOKEN: DEV_TOKEN } : {}),
      ...options.env,
    };
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: ROOT, env: env as NodeJS.ProcessEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout: Buffer.concat(out), stderr: err }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.stdin ?? Buffer.alloc(0));
  });
}

export function scratchDir(): string {
  return mkdtempSync(join(tmpdir(), 'envelope-client-'));
}
