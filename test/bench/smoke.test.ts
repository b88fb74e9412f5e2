/**
 * The benchmark must not rot: run `npm run bench:smoke` and check that the results file has
 * every case with numbers > 0. No timing assertions: the numbers depend on the machine and on
 * what else runs. Cases against local-kms may be skipped outside CI when its binary is missing
 * (the runner refuses to skip them in CI).
 *
 * Budget: with DEEP_TESTS=1 (.ci/run sets it) each HTTP case runs the smoke run's own warm-up
 * and duration; otherwise no warm-up and the shortest measured run (BENCH_SMOKE_ARGS, when set,
 * gives the arguments instead). The assertions are the same either way.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchResults } from '../../bench/lib/results.js';
import { expectedCaseIds } from '../../bench/runner.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const outDir = mkdtempSync(join(tmpdir(), 'bench-smoke-'));

afterAll(() => rmSync(outDir, { recursive: true, force: true }));

const QUICK_ARGS = ['--warmup', '0', '--duration', '0.5'];
const budgetArgs =
  process.env.BENCH_SMOKE_ARGS !== undefined
    ? process.env.BENCH_SMOKE_ARGS.split(/\s+/).filter(Boolean)
    : process.env.DEEP_TESTS === '1'
      ? []
      : QUICK_ARGS;

function runSmoke(): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('npm', ['run', '--silent', 'bench:smoke', '--', '--out', outDir, ...budgetArgs], {
      cwd: REPO,
      env: process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const collect = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-20_000);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('npm run bench:smoke', () => {
  it('runs every case and records numbers > 0', { timeout: 300_000 }, async () => {
    const { code, output } = await runSmoke();
    expect(code, output).toBe(0);

    const files = readdirSync(outDir).filter((name) => /^smoke-.*\.json$/.test(name));
    expect(files).toHaveLength(1);
    const results = JSON.parse(readFileSync(join(outDir, files[0]!), 'utf8')) as BenchResults;
    expect(results.settings.mode).toBe('smoke');

    for (const id of expectedCaseIds()) {
      const result = results.cases[id];
      expect(result, `case ${id} is missing`).toBeDefined();
      if (!result) continue;
      switch (result.kind) {
        case 'http':
          expect(result.requestsPerSecond, id).toBeGreaterThan(0);
          expect(result.requestsTotal, id).toBeGreaterThan(0);
          expect(result.latencyMs.p99, id).toBeGreaterThanOrEqual(result.latencyMs.p50);
          expect(result.mbPerSecond, id).toBeGreaterThan(0);
          // Server CPU comes with its user and system halves, which add up to it (rounding aside).
          if (result.serverCpuUsPerRequest !== undefined) {
            expect(result.serverUserUsPerRequest, id).toBeDefined();
            expect(result.serverSystemUsPerRequest, id).toBeDefined();
            expect(Math.abs(result.serverUserUsPerRequest! + result.serverSystemUsPerRequest! - result.serverCpuUsPerRequest), id).toBeLessThanOrEqual(0.2);
          }
          break;
        case 'ops':
          expect(result.opsPerSecond, id).toBeGreaterThan(0);
          expect(result.ops, id).toBeGreaterThan(0);
          break;
        case 'kms':
          expect(result.requests, id).toBeGreaterThan(0);
          expect(result.generateDataKeyCalls, id).toBeGreaterThan(0);
          break;
        case 'neighbour':
          expect(result.requestsTotal, id).toBeGreaterThan(0);
          expect(result.latencyMs.p99, id).toBeGreaterThanOrEqual(result.latencyMs.p50);
          expect(result.cacheHits + result.cacheMisses, id).toBeGreaterThan(0);
          if (id.endsWith('.b.flooded')) expect(result.flood?.requests, id).toBeGreaterThan(0);
          break;
        case 'stream':
          expect(result.mbPerSecond, id).toBeGreaterThan(0);
          expect(result.peakRssMiB, id).toBeGreaterThan(0);
          break;
        case 'skipped':
          // Only cases needing local-kms or haproxy may be skipped, and never in CI.
          expect(process.env.CI, `${id} skipped in CI: ${result.reason}`).not.toBe('true');
          expect(result.reason, id).toMatch(/local-kms|haproxy/);
          break;
      }
    }

    expect(results.targets.map((target) => target.id)).toEqual([
      'http-1k-encrypt-vs-floor',
      'inprocess-encrypt-vs-sdk',
      'burst-one-kms-call',
      'stream-vs-bare-route',
      'stream-bare-vs-node',
      'stream-rss-growth',
      'large-1m-vs-raw-crypto',
      'neighbour-front-p99',
    ]);
    for (const target of results.targets) {
      if (target.id === 'burst-one-kms-call' && results.cases['kms.burst.ours']?.kind === 'skipped') continue;
      if (target.id === 'neighbour-front-p99' && results.cases['neighbour.front.b.flooded']?.kind === 'skipped') continue;
      expect(target.measured, target.id).not.toBeNull();
      if (target.id === 'stream-rss-growth') continue; // a growth, not a rate: may be 0 at smoke sizes
      expect(target.measured!, target.id).toBeGreaterThan(0);
    }
  });
});
