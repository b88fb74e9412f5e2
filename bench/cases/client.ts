/**
 * Case 8, the `envelope` command: one file encrypted and decrypted client-side (a data key from
 * /v1/datakey, sealed and opened in the command; /v1/unwrap to decrypt) and server-side (the
 * stream routes), as an operator runs it, with the command's peak RSS. Full run: 1 GiB;
 * smoke: 16 MiB; BENCH_CLIENT_MIB=N chooses another size.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MiB } from '../lib/constants.js';
import { wants, type RunContext } from '../lib/context.js';
import { round } from '../lib/load.js';
import { runEnvelope, type CommandRun } from '../lib/command-run.js';
import type { StreamCase } from '../lib/results.js';
import { startService } from '../lib/services.js';

const MODES = ['client', 'server'] as const;
/** The bench policy's context (bench/fixtures/policy.yaml): the tenant claim and a purpose. */
const CONTEXT = ['--context', 'tenant=bench', '--context', 'purpose=client-bench'];

export function clientSize(mode: 'full' | 'smoke'): { bytes: number; label: string } {
  const chosen = Number(process.env.BENCH_CLIENT_MIB);
  if (Number.isFinite(chosen) && chosen > 0) return { bytes: chosen * MiB, label: `${chosen} MiB` };
  return mode === 'full' ? { bytes: 1024 * MiB, label: '1 GiB' } : { bytes: 16 * MiB, label: '16 MiB' };
}

export function clientCaseIds(): string[] {
  return MODES.flatMap((mode) => [`client.enc.${mode}`, `client.dec.${mode}`]);
}

async function writePlaintext(file: string, bytes: number): Promise<void> {
  const block = randomBytes(MiB);
  let sent = 0;
  const source = new Readable({
    read() {
      if (sent >= bytes) return this.push(null);
      const n = Math.min(MiB, bytes - sent);
      sent += n;
      this.push(block.subarray(0, n));
    },
  });
  await pipeline(source, createWriteStream(file));
}

export async function runClientCases(ctx: RunContext): Promise<void> {
  if (!wants(ctx, 'client')) return;
  const size = clientSize(ctx.settings.mode);
  const service = await startService(ctx, 'service-client', 'full', { env: { STREAM_MAX_BYTES: String(64 * 1024 * MiB) } });
  const env = { ENVELOPE_URL: service.server.url, ENVELOPE_TOKEN: (service.auth.authorization ?? '').replace(/^Bearer /, '') };
  const plaintext = join(ctx.workDir, 'client-plaintext');
  const record = (id: string, label: string, path: string, run: CommandRun) => {
    if (run.status !== 0) throw new Error(`${label}: the command exited ${run.status}: ${run.stderr}`);
    const result: StreamCase = {
      kind: 'stream',
      label,
      payloadBytes: size.bytes,
      server: 'envelope-cli',
      path,
      seconds: round(run.seconds, 2),
      mbPerSecond: round(size.bytes / 1e6 / run.seconds, 1),
      idleRssMiB: 0,
      peakRssMiB: round(run.peakRssBytes / MiB, 1),
      rssGrowthMiB: 0,
    };
    ctx.cases[id] = result;
    ctx.log(`    ${label}: ${result.mbPerSecond} MB/s, the command's peak RSS ${result.peakRssMiB} MiB`);
  };
  try {
    await writePlaintext(plaintext, size.bytes);
    // Warm the service (JIT, key directory) with a small file each way.
    await runEnvelope(['encrypt', ...CONTEXT, '-o', join(ctx.workDir, 'warm'), '-'], env);
    for (const mode of MODES) {
      const flags = mode === 'client' ? ['--client-side'] : [];
      const sealed = join(ctx.workDir, `client-${mode}.ev2`);
      const opened = join(ctx.workDir, `client-${mode}.out`);
      const where = mode === 'client' ? 'client-side (sealed in the command)' : 'server-side (/v1/encrypt/stream)';
      record(`client.enc.${mode}`, `envelope encrypt ${where}, ${size.label}`, mode === 'client' ? '/v1/datakey' : '/v1/encrypt/stream', await runEnvelope(['encrypt', ...flags, ...CONTEXT, '-o', sealed, plaintext], env));
      const decryptFlags = mode === 'client' ? [] : ['--server-side'];
      const how = mode === 'client' ? 'client-side (/v1/unwrap, opened in the command)' : 'server-side (/v1/decrypt/stream)';
      record(`client.dec.${mode}`, `envelope decrypt ${how}, ${size.label}`, mode === 'client' ? '/v1/unwrap' : '/v1/decrypt/stream', await runEnvelope(['decrypt', ...decryptFlags, '-o', opened, sealed], env));
      rmSync(sealed, { force: true });
      rmSync(opened, { force: true });
    }
  } finally {
    rmSync(plaintext, { force: true });
    await service.server.stop();
  }
}
