/**
 * A 1 GiB file made the manual way, migrated by the command as its own process (--kms-direct
 * against local-kms): the report's digest is the plaintext's, and the process's peak RSS grows
 * less than 64 MiB over the same command on a tiny file. DEEP_TESTS=1 only; prints MB/s.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KMSClient } from '@aws-sdk/client-kms';
import { afterAll, describe, expect, it } from 'vitest';
import { REPORT_NAME, type ReportLine } from '../../src/client/migrate/report.js';
import { LOCAL_KMS_CREDENTIALS, LOCAL_KMS_REGION, LOCAL_KMS_SEED, localKmsEndpoint, skipWithoutLocalKms } from '../helpers/local-kms.js';
import { generateDataKey, writeKeyFile } from './manual-files.js';
import { opensslAvailable } from './openssl-tool.js';

if (!opensslAvailable() && process.env.CI === 'true') throw new Error('openssl is required in CI');

const GIB = 1024 ** 3;
const MIB = 1024 ** 2;
const ENTRY = join(import.meta.dirname, '../../src/client/cli/main.ts');
const deep = process.env.DEEP_TESTS === '1';

/** Runs the command; returns its exit code, the peak RSS (VmHWM) and CPU seconds last seen in /proc. */
function runCommand(args: string[]): Promise<{ code: number | null; peakRss: number; cpuSeconds: number; stdout: string; seconds: number }> {
  const started = process.hrtime.bigint();
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], {
    env: { ...process.env, AWS_ACCESS_KEY_ID: LOCAL_KMS_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: LOCAL_KMS_CREDENTIALS.secretAccessKey, AWS_REGION: LOCAL_KMS_REGION },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  let peakRss = 0;
  let cpuSeconds = 0;
  const ticksPerSecond = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
  const poll = setInterval(() => {
    try {
      const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (hwm?.[1]) peakRss = Math.max(peakRss, Number(hwm[1]) * 1024);
      // utime and stime: fields 14 and 15, counted after the command name's closing parenthesis.
      const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      cpuSeconds = (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
    } catch {
      // exited between polls
    }
  }, 50);
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      clearInterval(poll);
      resolve({ code, peakRss, cpuSeconds, stdout, seconds: Number(process.hrtime.bigint() - started) / 1e9 });
    });
  });
}

describe.skipIf(!deep || skipWithoutLocalKms() || !opensslAvailable() || process.platform !== 'linux')('envelope migrate, 1 GiB', () => {
  const dir = mkdtempSync(join(tmpdir(), 'migrate-deep-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('migrates a 1 GiB openssl file with flat memory', { timeout: 900_000 }, async () => {
    const kms = new KMSClient({ endpoint: localKmsEndpoint(), region: LOCAL_KMS_REGION, credentials: LOCAL_KMS_CREDENTIALS });
    const keyArn = LOCAL_KMS_SEED.keys.default.keyArn;
    const make = async (name: string, bytes: number): Promise<{ file: string; keyFile: string; sha256: string }> => {
      const { blob, password } = await generateDataKey(kms, keyArn);
      const keyFile = join(dir, `${name}.key`);
      writeKeyFile(keyFile, blob, 'base64');
      const file = join(dir, `${name}.enc`);
      const sumFile = join(dir, `${name}.sum`);
      // A pseudo-random plaintext streamed from /dev/zero through AES-CTR: never on disk (the
      // first openssl ends on SIGPIPE, so only the last stage's status counts; sizes are checked).
      const script = `openssl enc -aes-256-ctr -nosalt -pass pass:plaintext-${name} -pbkdf2 < /dev/zero 2>/dev/null | head -c ${bytes} | tee >(sha256sum | cut -d' ' -f1 > "$3") | openssl enc -aes256 -pbkdf2 -k "$1" -out "$2"`;
      const made = spawnSync('bash', ['-c', script, 'make', password, file, sumFile], { encoding: 'utf8' });
      if (made.status !== 0) throw new Error(`making ${name} failed: ${made.stderr}`);
      // The process substitution may finish writing after bash returns.
      while (readFileSync(sumFile, 'utf8').trim().length !== 64) await new Promise((done) => setTimeout(done, 50));
      return { file, keyFile, sha256: readFileSync(sumFile, 'utf8').trim() };
    };
    const endpoint = localKmsEndpoint() as string;
    const migrate = (pair: { file: string; keyFile: string }, outDir: string) =>
      runCommand(['migrate', '--kms-direct', '--kms-endpoint', endpoint, '--region', LOCAL_KMS_REGION, '--key-id', keyArn, '--out-dir', outDir, '--wrapped-key', pair.keyFile, pair.file]);

    const tiny = await make('tiny', 1000);
    const big = await make('big', GIB);
    expect(statSync(big.file).size).toBeGreaterThan(GIB);

    const baseline = await migrate(tiny, join(dir, 'out-tiny'));
    expect(baseline.code).toBe(0);
    const run = await migrate(big, join(dir, 'out-big'));
    expect(run.stdout).toContain('migrated 1,');
    expect(run.code).toBe(0);
    const line = JSON.parse(readFileSync(join(dir, 'out-big', REPORT_NAME), 'utf8').trim()) as ReportLine;
    expect(line).toMatchObject({ status: 'migrated', bytes: GIB, sha256: big.sha256 });
    const growth = run.peakRss - baseline.peakRss;
    console.log(
      `[migrate 1 GiB] ${(GIB / MIB / run.seconds).toFixed(1)} MiB/s (decrypt CBC, seal, write, fsync, decrypt back: ${run.seconds.toFixed(1)} s wall, ` +
        `${run.cpuSeconds.toFixed(1)} s CPU, ${(GIB / MIB / Math.max(run.cpuSeconds, 0.01)).toFixed(1)} MiB per CPU second); ` +
        `peak RSS ${(run.peakRss / MIB).toFixed(1)} MiB vs ${(baseline.peakRss / MIB).toFixed(1)} MiB on a tiny file: growth ${(growth / MIB).toFixed(1)} MiB`,
    );
    expect(growth).toBeLessThan(64 * MIB);
    expect(readdirSync(join(dir, 'out-big')).sort()).toEqual(['big.enc.env', REPORT_NAME]);
    kms.destroy();
    writeFileSync(join(dir, 'done'), '');
  });
});
