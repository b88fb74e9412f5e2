/**
 * Case 2, in-process, no HTTP: the envelope core (EnvelopeService with a warm DataKeyCache over
 * LocalKeyProvider) against the AWS Encryption SDK for JavaScript with its caching materials
 * manager over a raw AES keyring (no KMS, no network on either side), suites 0x0478 and 0x0578
 * (the SDK default), encrypt and decrypt of 1 KiB, in interleaved rounds (median kept). Ours
 * is the tsc build (lib/server-build.ts); the SDK is the JavaScript its package ships.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { collectGarbage } from '../lib/collect-garbage.js';
import { BENCH_CONTEXT, DEFAULT_CACHE_LIMITS, KiB } from '../lib/constants.js';
import { wants, type RunContext } from '../lib/context.js';
import { measureOps, recordOps, type OpsMeasurement } from '../lib/ops.js';
import { SUITE_0478, SUITE_0578, cachingManager, rawAesKeyring, sdk } from '../lib/sdk.js';
import { importBuilt } from '../lib/server-build.js';

interface Series {
  id: string;
  label: string;
  op: () => unknown;
}

/**
 * Measures every series in interleaved rounds (ours, theirs, theirs, ours, ...), so a burst of
 * background load hits every series alike, and keeps each series' median round. Each round
 * starts on a collected heap (lib/collect-garbage.ts), so no series pays for collecting what the
 * series before it left.
 */
async function measureRounds(ctx: RunContext, series: Series[], bytes: number): Promise<void> {
  const { inprocessWarmupMs: warm, inprocessDurationMs: duration, inprocessRounds: rounds } = ctx.settings;
  const samples = new Map<string, OpsMeasurement[]>(series.map((s) => [s.id, []]));
  for (const s of series) await measureOps(s.op, warm, Math.min(200, duration)); // JIT warm-up for all first
  for (let round = 0; round < rounds; round++) {
    for (const s of series) {
      collectGarbage();
      samples.get(s.id)!.push(await measureOps(s.op, 0, duration / rounds));
    }
  }
  for (const s of series) {
    const sorted = [...samples.get(s.id)!].sort((a, b) => a.opsPerSecond - b.opsPerSecond);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    recordOps(ctx, s.id, s.label, bytes, {
      ...median,
      ops: sorted.reduce((sum, m) => sum + m.ops, 0),
    }, sorted.map((m) => m.opsPerSecond));
  }
}

export async function runInProcessCases(ctx: RunContext): Promise<void> {
  if (!wants(ctx, 'inprocess')) return;
  // Ours as tsc builds it (what production runs), not through the runner's tsx.
  const { compose } = await importBuilt<typeof import('../../src/compose.js')>('src/compose.js');
  const { loadConfig } = await importBuilt<typeof import('../../src/config.js')>('src/config.js');
  const { KmsTrace } = await importBuilt<typeof import('../../src/keys/kms-trace.js')>('src/keys/kms-trace.js');
  const { ServiceMetrics } = await importBuilt<typeof import('../../src/metrics/metrics.js')>('src/metrics/metrics.js');
  const plaintext = randomBytes(KiB);
  const context = { ...BENCH_CONTEXT };

  // Ours: the envelope service exactly as the service composes it (compose.ts: default cache
  // limits, the same as DEFAULT_CACHE_LIMITS, the provider's decorators, cache metrics), minus
  // HTTP, policy and audit.
  const config = loadConfig({
    LOCAL_KEYSTORE: join(ctx.workDir, 'inprocess-keystore.json'),
    AUDIT_LOG: join(ctx.workDir, 'inprocess-audit.log'),
    LOG_LEVEL: 'silent',
    CACHE_MAX_AGE_MS: String(DEFAULT_CACHE_LIMITS.maxAgeMs),
    CACHE_MAX_MESSAGES: String(DEFAULT_CACHE_LIMITS.maxMessages),
    CACHE_MAX_BYTES: String(DEFAULT_CACHE_LIMITS.maxBytes),
    CACHE_CAPACITY: String(DEFAULT_CACHE_LIMITS.capacity),
  });
  const service = await compose(config, { metrics: new ServiceMetrics({ collectDefaults: false }), checkpoints: false });
  const { envelope } = service;
  const keyArn = await service.directory.resolve('alias/default', new KmsTrace());
  const ours = await envelope.encrypt(keyArn, plaintext, context, undefined, new KmsTrace());
  const oursRoundTrip = await envelope.decrypt(envelope.parse(ours.ciphertext), undefined, new KmsTrace());
  if (!oursRoundTrip.plaintext.equals(plaintext)) throw new Error('envelope round trip failed');

  // Theirs: one caching materials manager per suite, same caps, a raw AES master key.
  const keyring = rawAesKeyring(randomBytes(32));
  const encryptSeries: Series[] = [
    { id: 'inproc.enc.ours', label: 'this service: EnvelopeService.encrypt (warm cache)', op: () => envelope.encrypt(keyArn, plaintext, context, undefined, new KmsTrace()) },
  ];
  const decryptSeries: Series[] = [
    { id: 'inproc.dec.ours', label: 'this service: parse + EnvelopeService.decrypt (warm cache)', op: () => envelope.decrypt(envelope.parse(ours.ciphertext), undefined, new KmsTrace()) },
  ];
  for (const [tag, suiteId, name] of [
    ['0478', SUITE_0478, '0x0478 (committing, no signature)'],
    ['0578', SUITE_0578, '0x0578 (committing + ECDSA P-384, the SDK default)'],
  ] as const) {
    const cmm = cachingManager(keyring, DEFAULT_CACHE_LIMITS);
    const options = { encryptionContext: context, suiteId };
    const { result: message } = await sdk.encrypt(cmm, plaintext, options);
    const opened = await sdk.decrypt(cmm, message);
    if (!opened.plaintext.equals(plaintext)) throw new Error(`SDK ${tag} round trip failed`);
    encryptSeries.push({ id: `inproc.enc.sdk-${tag}`, label: `AWS Encryption SDK encrypt, ${name}, caching CMM`, op: () => sdk.encrypt(cmm, plaintext, options) });
    decryptSeries.push({ id: `inproc.dec.sdk-${tag}`, label: `AWS Encryption SDK decrypt, ${name}, caching CMM`, op: () => sdk.decrypt(cmm, message) });
  }
  await measureRounds(ctx, encryptSeries, KiB);
  await measureRounds(ctx, decryptSeries, KiB);
  service.stop();
  await service.close();
}
