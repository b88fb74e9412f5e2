/**
 * `npm run bench:floor` (bench/main.ts floor): what one in-process 1 KiB encrypt costs, step by
 * step, through Node's crypto API. This is the floor behind the in-process target in
 * docs/BENCHMARKS.md: the per-message cryptography format v1 (and the Encryption SDK's suite
 * 0x0478) must do, next to what the whole EnvelopeService.encrypt costs around it. Then the same
 * for one 1 MiB message, where what matters is how the cipher's output is allocated and copied
 * (why seal slices large bodies and open does not, message-crypto.ts). Prints the mean time per
 * operation (and throughput for 1 MiB); asserts nothing. The service's modules are the tsc
 * build's (lib/server-build.ts), as production runs them.
 *
 *   --duration <s>   measured seconds per step (default 1.5; warm-up is a fifth of it); the 1 KiB
 *                    steps share them out over interleaved rounds
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { collectGarbage } from '../lib/collect-garbage.js';
import { BENCH_CONTEXT, DEFAULT_CACHE_LIMITS, KiB } from '../lib/constants.js';
import { measureOps } from '../lib/ops.js';
import { importBuilt } from '../lib/server-build.js';

/** The service's modules as tsc builds them (what production runs), not through tsx. */
async function loadBuilt() {
  return {
    ...(await importBuilt<typeof import('../../src/keys/data-key-cache.js')>('src/keys/data-key-cache.js')),
    ...(await importBuilt<typeof import('../../src/format/format.js')>('src/format/format.js')),
    ...(await importBuilt<typeof import('../../src/keys/kms-trace.js')>('src/keys/kms-trace.js')),
    ...(await importBuilt<typeof import('../../src/format/message-crypto.js')>('src/format/message-crypto.js')),
    ...(await importBuilt<typeof import('../../src/keys/envelope-service.js')>('src/keys/envelope-service.js')),
    ...(await importBuilt<typeof import('../../src/kms/local.js')>('src/kms/local.js')),
  };
}
type Built = Awaited<ReturnType<typeof loadBuilt>>;

let durationMs = 1_500;

const SLICE = 64 * KiB;

interface Step {
  label: string;
  op: () => unknown;
}

const ROUNDS = 7;

/**
 * Each step's median over rounds that take every step in turn: on a shared machine a burst of
 * other work then lands on all steps alike, instead of on whichever one ran at that moment,
 * which would skew the ratio of the service to the floor. Each round starts on a collected
 * heap (lib/collect-garbage.ts): before, the step after the GCM step measured more than it costs.
 */
async function interleaved(steps: Step[]): Promise<number[]> {
  for (const step of steps) await measureOps(step.op, durationMs / 5, durationMs / 10);
  const samples = steps.map((): number[] => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, step] of steps.entries()) {
      collectGarbage();
      samples[i]!.push((await measureOps(step.op, 0, durationMs / ROUNDS)).meanUs);
    }
  }
  return steps.map((step, i) => {
    const median = samples[i]!.sort((a, b) => a - b)[ROUNDS >> 1]!;
    process.stdout.write(`  ${step.label.padEnd(60)} ${median.toFixed(2).padStart(7)} µs\n`);
    return median;
  });
}

async function report(label: string, op: () => unknown, bytes?: number): Promise<number> {
  const { meanUs } = await measureOps(op, durationMs / 5, durationMs);
  const rate = bytes ? `  ${(bytes / meanUs / 1000).toFixed(2).padStart(5)} GB/s` : '';
  process.stdout.write(`${label.padEnd(62)} ${meanUs.toFixed(2).padStart(7)} µs${rate}\n`);
  return meanUs;
}

/** One 1 MiB message: the cipher's output handling, whole against sliced, seal and open. */
async function largeMessage(
  { sealMessage, parseEnvelope, openMessage }: Built,
  key: Buffer,
  iv: Buffer,
  dataKey: Buffer,
  prefix: ReturnType<Built['encodeEnvelopePrefix']>,
): Promise<void> {
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
  const built = await loadBuilt();
  const { DataKeyCache, EnvelopeService, KmsTrace, LocalKeyProvider, deriveMessageKeyMaterial, encodeEnvelopePrefix, sealMessage, HKDF_INFO } = built;
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

    const plaintextBase64 = plaintext.toString('base64');
    const steps: Step[] = [
      {
        // What the bare AES route (b) does besides its seal: the floor's accounting in docs/BENCHMARKS.md.
        label: 'base64 of 1 KiB decoded, and 1 KiB encoded',
        op: () => Buffer.from(plaintextBase64, 'base64').toString('base64'),
      },
      { label: 'one createHmac(sha512) over 32 bytes', op: () => createHmac('sha512', salt).update(key).digest() },
      {
        label: 'AES-256-GCM over 1 KiB (createCipheriv, update, final, tag)',
        op: () => {
          const cipher = createCipheriv('aes-256-gcm', key, iv);
          cipher.update(plaintext);
          cipher.final();
          cipher.getAuthTag();
        },
      },
      { label: 'HKDF-SHA-512 key + commitment (deriveMessageKeyMaterial)', op: () => deriveMessageKeyMaterial(key, salt) },
      { label: 'the same bytes through hkdfSync (what the two HMACs replace)', op: () => hkdfSync('sha512', key, salt, HKDF_INFO, 64) },
      { label: 'sealMessage (the above, ids, header, output buffer)', op: () => sealMessage(key, prefix, plaintext) },
      {
        label: 'EnvelopeService.encrypt (cache hit, ev1: string)',
        op: () => envelope.encrypt(keyArn, plaintext, { ...BENCH_CONTEXT }, undefined, new KmsTrace()),
      },
    ];
    process.stdout.write(`one 1 KiB message, in-process (median of ${ROUNDS} interleaved rounds of a tight loop):\n`);
    const [, hmac, gcm, , , , service] = await interleaved(steps);
    const floorUs = 2 * hmac! + gcm!;
    process.stdout.write(`floor (2 HMAC + 1 GCM): ${floorUs.toFixed(1)} µs; EnvelopeService.encrypt: ${(service! / floorUs).toFixed(2)} × the floor\n`);
    await largeMessage(built, key, iv, dataKey.plaintextKey, prefix);
    envelope.clear();
    await provider.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return 0;
}
