/**
 * npm run bench:floor: what one in-process 1 KiB encrypt costs, step by step, through Node's
 * crypto API. This is the floor behind the in-process target in docs/BENCHMARKS.md: the
 * per-message cryptography format v1 (and the Encryption SDK's suite 0x0478) must do, next to
 * what the whole EnvelopeService.encrypt costs around it. Prints µs per operation; asserts
 * nothing. Runs in a few seconds.
 */
import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataKeyCache } from '../src/envelope/data-key-cache.js';
import { encodeEnvelopePrefix } from '../src/envelope/format.js';
import { KmsTrace } from '../src/envelope/kms-trace.js';
import { deriveMessageKeyMaterial, sealMessage } from '../src/envelope/message-crypto.js';
import { EnvelopeService } from '../src/envelope/service.js';
import { LocalKeyProvider } from '../src/kms/local.js';
import { BENCH_CONTEXT, KiB } from './lib/constants.js';
import { DEFAULT_CACHE_LIMITS } from './cases/inprocess.js';
import { measureOps } from './lib/ops.js';

const WARMUP_MS = 300;
const DURATION_MS = 1_500;

async function report(label: string, op: () => unknown): Promise<number> {
  const { meanUs } = await measureOps(op, WARMUP_MS, DURATION_MS);
  process.stdout.write(`${label.padEnd(62)} ${meanUs.toFixed(2).padStart(7)} µs\n`);
  return meanUs;
}

async function main(): Promise<void> {
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
    await report('  sealMessage (the above, ids, header, output buffer)', () => sealMessage(key, prefix, plaintext));
    await report('  EnvelopeService.encrypt (cache hit, ev1: string)', () =>
      envelope.encrypt(keyArn, plaintext, { ...BENCH_CONTEXT }, undefined, new KmsTrace()),
    );
    process.stdout.write(`floor (2 HMAC + 1 GCM): ${(2 * hmac + gcm).toFixed(1)} µs\n`);
    envelope.clear();
    await provider.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
