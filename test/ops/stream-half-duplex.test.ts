/**
 * Half-duplex clients on the streaming routes: Python `requests` sends its whole body before it
 * reads the answer (data=generator: chunked; data=file: Content-Length). The service, a real
 * process, reads on into its spool (ciphertext only) while the answer is not read, so both
 * routes complete: the decrypted bytes' SHA-256 equals the plaintext's, the process's resident
 * memory stays flat (sampled from /proc while the streams run), and the spool directory is
 * empty afterwards.
 *
 * The size is a parameter: 256 MiB by default, 1 GiB with DEEP_TESTS=1, or STREAM_TEST_BYTES.
 * Not smaller by default: a process moving bytes this fast holds tens of MiB of garbage
 * buffers between collections, so only well above that does "flat" differ from "holds the
 * stream".
 * Python `requests` comes from .tools/venv (scripts/test-venv.sh installs it when missing);
 * skipped without python3 outside CI.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startService, tempDir, type ServiceProcess } from './helpers/service-process.js';

const VENV_SCRIPT = join(REPO_ROOT, 'scripts', 'test-venv.sh');
const CLIENT = join(REPO_ROOT, 'test', 'ops', 'helpers', 'half_duplex_client.py');
const MiB = 1024 * 1024;
const SIZE = Number(process.env.STREAM_TEST_BYTES ?? (process.env.DEEP_TESTS === '1' ? 1024 * MiB : 256 * MiB));
const runnable = spawnSync('python3', ['--version']).status === 0 || process.env.CI === 'true';
if (!runnable) console.warn('[stream-half-duplex] python3 not found: SKIPPED');
/** .tools/venv's python, with `requests` (scripts/test-venv.sh installs it when missing). */
let PYTHON = '';

function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

function runClient(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(PYTHON, [CLIENT, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe.skipIf(!runnable)(`a half-duplex client (Python requests), ${SIZE / MiB} MiB through both stream routes`, () => {
  const dir = tempDir('envelope-half-duplex-');
  const spoolDir = join(dir.path, 'spool');
  const work = join(dir.path, 'client');
  let service: ServiceProcess;
  beforeAll(async () => {
    const venv = spawnSync('bash', [VENV_SCRIPT], { encoding: 'utf8', timeout: 280_000 });
    if (venv.status !== 0) throw new Error(`scripts/test-venv.sh failed: ${venv.stderr}`);
    PYTHON = venv.stdout.trim();
    mkdirSync(work);
    service = await startService({
      LOCAL_KEYSTORE: join(dir.path, 'keystore.json'),
      AUDIT_LOG: join(dir.path, 'audit.log'),
      STREAM_SPOOL_DIR: spoolDir,
      STREAM_SPOOL_MAX_BYTES_PER_PRINCIPAL: String(2 * SIZE + 64 * MiB),
      STREAM_SPOOL_MAX_BYTES: String(2 * SIZE + 64 * MiB),
      // Short, so a stream still bounded by it would fail quickly.
      REQUEST_TIMEOUT_MS: '10000',
      MAX_EVENT_LOOP_DELAY_MS: '0',
    });
  }, 360_000);
  afterAll(async () => {
    await service?.stop();
    dir.remove();
  });

  it('encrypts and decrypts to the same SHA-256, in flat memory, leaving the spool empty', async () => {
    const pid = service.child.pid as number;
    const baseline = rssBytes(pid);
    let peak = baseline;
    const sampler = setInterval(() => {
      try {
        peak = Math.max(peak, rssBytes(pid));
      } catch {
        // the process is gone: the test fails on the client's result
      }
    }, 50);
    const started = Date.now();
    const result = await runClient([service.baseUrl, 'dev-token', String(SIZE), work], 20 * 60_000).finally(() => clearInterval(sampler));
    const seconds = (Date.now() - started) / 1000;
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout.trim()) as { plainSha256: string; outSha256: string; outBytes: number; sealedBytes: number };
    expect(report.outBytes).toBe(SIZE);
    expect(report.outSha256).toBe(report.plainSha256);
    console.log(`[stream-half-duplex] ${SIZE / MiB} MiB: ${seconds.toFixed(1)} s both ways, RSS ${(baseline / MiB).toFixed(0)} -> peak ${(peak / MiB).toFixed(0)} MiB`);
    // Flat: segments, socket buffers and garbage not yet collected, not the stream (256 MiB or more).
    expect(peak - baseline).toBeLessThan(160 * MiB);
    // The spool was used (the client read nothing while it sent), and nothing is left in it.
    const metrics = await (await fetch(`${service.baseUrl}/metrics`)).text();
    const spooled = Number(/^stream_spooled_bytes_total (\d+)/m.exec(metrics)?.[1] ?? 0);
    expect(spooled).toBeGreaterThan(SIZE / 2);
    expect(/^stream_spool_bytes 0$/m.test(metrics)).toBe(true);
    expect(readdirSync(spoolDir)).toEqual([]);
  }, 25 * 60_000);
});
