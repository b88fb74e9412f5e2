/**
 * Case 4's reference: raw node:crypto AES-256-GCM, in-process, on the large payloads.
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { wants, type RunContext } from '../lib/context.js';
import { measureOps, recordOps, type OpsMeasurement } from '../lib/ops.js';
import { largeSizes } from '../lib/sizes.js';

/** Samples of the raw reference taken so far in this run, per size key. */
const rawSamples = new Map<string, OpsMeasurement[]>();

/**
 * Raw AES-256-GCM over the same bytes as the large HTTP cases: the MB/s reference.
 *
 * Sampled several times during the run (with the in-process cases, and again right before each
 * server's large-payload cases) and recorded as the upper median sample: raw GCM throughput
 * swings within one run on a shared machine (docs/BENCHMARKS.md), so one sample taken far from
 * the HTTP cases would decide their ratio.
 */
export async function runRawCryptoCases(ctx: RunContext): Promise<void> {
  if (!wants(ctx, 'large')) return;
  const key = randomBytes(32);
  const warmupMs = Math.min(500, ctx.settings.inprocessWarmupMs);
  const durationMs = Math.min(2_000, ctx.settings.inprocessDurationMs);
  for (const size of largeSizes()) {
    if (ctx.sizes.size > 0 && !ctx.sizes.has(size.key)) continue;
    const plaintext = randomBytes(size.bytes);
    const iv = randomBytes(12);
    const op = (): void => {
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.update(plaintext);
      cipher.final();
      cipher.getAuthTag();
    };
    const samples = rawSamples.get(size.key) ?? [];
    samples.push(await measureOps(op, warmupMs, durationMs));
    rawSamples.set(size.key, samples);
    const sorted = [...samples].sort((a, b) => a.opsPerSecond - b.opsPerSecond);
    const median = sorted[Math.floor(sorted.length / 2)]!; // the upper median: never flatters the ratios
    recordOps(
      ctx,
      `large.raw.${size.key}`,
      `raw node:crypto AES-256-GCM in-process, ${size.label}`,
      size.bytes,
      { ...median, ops: samples.reduce((sum, m) => sum + m.ops, 0) },
      samples.map((m) => m.opsPerSecond),
    );
  }
}
