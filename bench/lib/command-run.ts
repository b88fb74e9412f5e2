/**
 * Runs the `envelope` command as a process (node --import tsx, as `npm run envelope` does) and
 * reports its wall time and peak resident memory (VmHWM, sampled until it exits; the kernel's
 * high-water mark, so a late sample still sees an early peak). Shared by the client bench case
 * and the deep 1 GiB test.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ENVELOPE_MAIN = fileURLToPath(new URL('../../src/client/cli/main.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface CommandRun {
  status: number | null;
  stderr: string;
  seconds: number;
  peakRssBytes: number;
}

function highWaterMark(pid: number): number {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export function runEnvelope(args: string[], env: Record<string, string>): Promise<CommandRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, ['--import', 'tsx', ENVELOPE_MAIN, ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, highWaterMark(child.pid ?? 0))), 50);
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', (error) => {
      clearInterval(sampler);
      reject(error);
    });
    child.on('exit', (status) => {
      clearInterval(sampler);
      resolve({ status, stderr, seconds: (performance.now() - started) / 1000, peakRssBytes: peak });
    });
  });
}
