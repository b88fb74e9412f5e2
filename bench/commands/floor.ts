/**
 * `npm run bench:floor` (bench/main.ts floor): what one in-process 1 KiB encrypt costs, step by
 * step, through Node's crypto API. This is the floor behind the in-process target in
 * docs/BENCHMARKS.md: the per-message cryptography format v1 (and the Encryption SDK's suite
 * 0x0478) must do, next to what the whole EnvelopeService.encrypt costs around it. Then the same
 * for one 1 MiB message, where what matters is how the cipher's output is allocated and copied
 * (why seal slices large bodies and open does not, message-crypto.ts). Prints the mean time per
 * operation (and throughput for 1 MiB); asserts nothing.
 *
 *   --duration <s>   measured seconds per step (default 1.5; warm-up is a fifth of it)
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DataKeyCache } from '../../src/keys/data-key-cache.js';
import { encodeEnvelopePrefix, parseEnvelope } from '../../src/format/format.js';
import { KmsTrace } from '../../src/keys/kms-trace.js';
import { deriveMessageKeyMaterial, HKDF_INFO, openMessage, sealMessage } from '../../src/format/message-crypto.js';
import { EnvelopeService } from '../../src/keys/envelope-service.js';
import { LocalKeyProvider } from '../../src/kms/local.js';
import { BENCH_CONTEXT, DEFAULT_CACHE_LIMITS, KiB } from '../lib/constants.js';
import { measureOps } from '../lib/ops.js';

let durationMs = 1_500;

const SLICE = 64 * KiB;

async function report(label: string, op: () => unknown, bytes?: number): Promise<number> {
  const { meanUs } = await measureOps(op, durationMs / 5, durationMs);
  const rate = bytes ? `  ${(bytes / meanUs / 1000).toFixed(2).padStart(5)} GB/s` : '';
  process.stdout.write(`${label.padEnd(62)} ${meanUs.toFixed(2).padStart(7)} µs${rate}\n`);
  return meanUs;
}

/** One 1 MiB message: the cipher's output handling, whole against sliced, seal and open. */
async function largeMessage(key: Buffer, iv: Buffer, dataKey: Buffer, prefix: ReturnType<typeof encodeEnvelopePrefix>): Promise<void> {
  const MiB = 1024 * KiB;
  const plaintext = randomBytes(MiB);
  process.stdout.write('\none 1 MiB message, in-process:\n');
  await report('  GCM encrypt, one update, output not copied (raw)', () => {
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.update(plaintext);
    cipher.final();
  }, MiB);
  await report('  GCM encrypt, one update copied into an envelope buffer', () => {
    const out = Buffer.allocUnsafe(MiB + 16);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.update(plaintext).copy(out, 0);
    cipher.final();
  }, MiB);
  await report('  GCM encrypt, 64 KiB slices copied into an envelope buffer', () => {
    const out = Buffer.allocUnsafe(MiB + 16);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    for (let at = 0; at < MiB; at += SLICE) cipher.update(plaintext.subarray(at, at + SLICE)).copy(out, at);
    cipher.final();
  }, MiB);
  await report('  sealMessage (slices)', () => sealMessage(dataKey, prefix, plaintext), MiB);

  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = cipher.update(plaintext);
  cipher.final();
  const tag = cipher.getAuthTag();
  await report('  GCM decrypt, one update (its output is the plaintext)', () => {
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAuthTag(tag);
    decipher.update(body);
    decipher.final();
  }, MiB);
  await report('  GCM decrypt, 64 KiB slices copied out and zeroed (not used)', () => {
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAuthTag(tag);
    const out = Buffer.allocUnsafeSlow(MiB);
    for (let at = 0; at < MiB; at += SLICE) {
      const slice = decipher.update(body.subarray(at, at + SLICE));
      slice.copy(out, at);
      slice.fill(0);
    }
    decipher.final();
  }, MiB);
  const sealed = parseEnvelope(sealMessage(dataKey, prefix, plaintext));
  await report('  openMessage (one update)', () => openMessage(dataKey, sealed), MiB);
}

export async function floor(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { duration: { type: 'string', default: '1.5' } } });
  durationMs = Number(values.duration) * 1000;
  if (!(durationMs > 0 && durationMs <= 60_000)) throw new Error('--duration must be in (0, 60]');
  const plaintext = randomBytes(KiB);
  const key = randomBytes(32);
  const salt = randomBytes(32);
  const iv = randomBytes(12);
  const dir = mkdtempSync(join(tmpdir(), 'bench-floor-'));
  try {
    const provider = new LocalKeyProvider({ path: join(dir, 'keystore.json') });
    const quiet = { hit() {}, miss() {}, evicted() {} };
    const envelope = new EnvelopeService(provider, {
      encrypt: new DataKeyCache('encrypt', { ...DEFAULT_CACHE_LIMITS, maxMessages: Number.MAX_SAFE_INTEGER }, quiet),
      decrypt: new DataKeyCache('decrypt', DEFAULT_CACHE_LIMITS, quiet),
    });
    const { keyArn } = await provider.describeKey('alias/default');
    const dataKey = await provider.generateDataKey(keyArn, { ...BENCH_CONTEXT });
    const prefix = encodeEnvelopePrefix({ keyArn, wrappedKey: dataKey.wrappedKey }, { ...BENCH_CONTEXT });

    process.stdout.write('one 1 KiB message, in-process (mean of a tight loop):\n');
    const hmac = await report('  one createHmac(sha512) over 32 bytes', () => createHmac('sha512', salt).update(key).digest());
    const gcm = await report('  AES-256-GCM over 1 KiB (createCipheriv, update, final, tag)', () => {
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.update(plaintext);
      cipher.final();
      cipher.getAuthTag();
    });
    await report('  HKDF-SHA-512 key + commitment (deriveMessageKeyMaterial)', () => deriveMessageKeyMaterial(key, salt));
    await report('  the same bytes through hkdfSync (what the two HMACs replace)', () => hkdfSync('sha512', key, salt, HKDF_INFO, 64));
    await report('  sealMessage (the above, ids, header, output buffer)', () => sealMessage(key, prefix, plaintext));
    await report('  EnvelopeService.encrypt (cache hit, ev1: string)', () =>
      envelope.encrypt(keyArn, plaintext, { ...BENCH_CONTEXT }, undefined, new KmsTrace()),
    );
    process.stdout.write(`floor (2 HMAC + 1 GCM): ${(2 * hmac + gcm).toFixed(1)} µs\n`);
    await largeMessage(key, iv, dataKey.plaintextKey, prefix);
    envelope.clear();
    await provider.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return 0;
}
