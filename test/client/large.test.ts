/**
 * A 1 GiB file through the command, client-side and server-side, both ways: the output equals
 * the input, and the command's peak RSS grows by less than 64 MiB over the same command on a
 * one-byte file (memory is a few segments whatever the size). Only with DEEP_TESTS=1 (CI), or
 * CLIENT_TEST_BYTES=N for another size; the default run is small and fast without it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runEnvelope } from '../../bench/lib/command-run.js';
import { DEV_TOKEN } from '../helpers/app.js';
import { listeningApp, scratchDir, type ListeningApp } from './helpers.js';

const MiB = 1024 * 1024;
const SIZE = Number(process.env.CLIENT_TEST_BYTES ?? (process.env.DEEP_TESTS === '1' ? 1024 * MiB : 0));
const MAX_GROWTH_MiB = 64;

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

describe.skipIf(SIZE === 0)(`${SIZE / MiB} MiB through the envelope command (DEEP_TESTS=1)`, () => {
  let app: ListeningApp;
  let dir: string;
  let env: Record<string, string>;
  let digest: string;

  beforeAll(async () => {
    app = await listeningApp({ env: { STREAM_MAX_BYTES: String(64 * 1024 * MiB) } });
    env = { ENVELOPE_URL: app.url, ENVELOPE_TOKEN: DEV_TOKEN };
    dir = scratchDir();
    const block = randomBytes(MiB);
    let sent = 0;
    await pipeline(
      new Readable({
        read() {
          if (sent >= SIZE) return this.push(null);
          const n = Math.min(MiB, SIZE - sent);
          sent += n;
          this.push(block.subarray(0, n));
        },
      }),
      createWriteStream(join(dir, 'plain')),
    );
    writeFileSync(join(dir, 'tiny'), 'x');
    digest = await sha256Of(join(dir, 'plain'));
  }, 600_000);
  afterAll(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    ['client-side', ['--client-side'], []],
    ['server-side', [], ['--server-side']],
  ])('%s: round trip, the command\'s peak RSS flat', async (_mode, encryptFlags, decryptFlags) => {
    const context = ['--context', 'tenant=deep'];
    const baseline = {
      encrypt: await runEnvelope(['encrypt', ...encryptFlags, ...context, '-o', join(dir, 'tiny.ev2'), join(dir, 'tiny')], env),
      decrypt: await runEnvelope(['decrypt', ...decryptFlags, '-o', join(dir, 'tiny.out'), join(dir, 'tiny.ev2')], env),
    };
    const encrypted = await runEnvelope(['encrypt', ...encryptFlags, ...context, '-o', join(dir, 'plain.ev2'), join(dir, 'plain')], env);
    expect(encrypted.status, encrypted.stderr).toBe(0);
    const decrypted = await runEnvelope(['decrypt', ...decryptFlags, '-o', join(dir, 'plain.out'), join(dir, 'plain.ev2')], env);
    expect(decrypted.status, decrypted.stderr).toBe(0);
    expect(await sha256Of(join(dir, 'plain.out'))).toBe(digest);
    const growth = {
      encrypt: (encrypted.peakRssBytes - baseline.encrypt.peakRssBytes) / MiB,
      decrypt: (decrypted.peakRssBytes - baseline.decrypt.peakRssBytes) / MiB,
    };
    console.log(`[client ${_mode}] ${SIZE / MiB} MiB: encrypt ${(SIZE / 1e6 / encrypted.seconds).toFixed(1)} MB/s, peak RSS +${growth.encrypt.toFixed(1)} MiB; decrypt ${(SIZE / 1e6 / decrypted.seconds).toFixed(1)} MB/s, +${growth.decrypt.toFixed(1)} MiB`);
    expect(growth.encrypt).toBeLessThan(MAX_GROWTH_MiB);
    expect(growth.decrypt).toBeLessThan(MAX_GROWTH_MiB);
    rmSync(join(dir, 'plain.ev2'));
    rmSync(join(dir, 'plain.out'));
  }, 1_200_000);
});
