/** In-process throughput: run an operation back to back (one at a time) for a while. */
import type { RunContext } from './context.js';
import { round } from './load.js';

export interface OpsMeasurement {
  opsPerSecond: number;
  ops: number;
  meanUs: number;
}

export async function measureOps(op: () => unknown, warmupMs: number, durationMs: number): Promise<OpsMeasurement> {
  await loop(op, warmupMs);
  const { ops, elapsedMs } = await loop(op, durationMs);
  return { opsPerSecond: round((ops * 1000) / elapsedMs, 1), ops, meanUs: round((elapsedMs * 1000) / ops, 2) };
}

async function loop(op: () => unknown, durationMs: number): Promise<{ ops: number; elapsedMs: number }> {
  const start = performance.now();
  const deadline = start + durationMs;
  let ops = 0;
  // Check the clock every few operations only; at least one batch always runs.
  do {
    for (let i = 0; i < 16; i++) {
      const result = op();
      if (result instanceof Promise) await result;
      ops++;
    }
  } while (performance.now() < deadline);
  return { ops, elapsedMs: performance.now() - start };
}

/** Records an in-process measurement as an `ops` case (MB/s from its payload size). */
export function recordOps(ctx: RunContext, id: string, label: string, bytes: number, result: OpsMeasurement, rounds?: number[]): void {
  ctx.cases[id] = {
    kind: 'ops',
    label,
    payloadBytes: bytes,
    mbPerSecond: round((result.opsPerSecond * bytes) / 1e6, 1),
    ...result,
    ...(rounds ? { roundsOpsPerSecond: rounds } : {}),
  };
  ctx.log(`  ${id}: ${label}: ${result.opsPerSecond} ops/s (${result.meanUs} us/op)${rounds ? ` median of [${rounds.join(', ')}]` : ''}`);
}
