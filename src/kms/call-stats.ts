/**
 * Recent KMS calls per operation, for GET /v1/admin/kms: error rate and latency over the last
 * calls (at most SAMPLES per operation, none older than WINDOW_MS). Prometheus has the full
 * history; this answers "how is KMS doing right now" on the replica that answers, without a
 * metrics stack. A `decorateProvider` wrapper, inside the circuit breaker: calls the breaker
 * refuses never reached KMS and are not counted here.
 */
import { decorateProvider } from './decorate.js';
import { isKmsError } from './errors.js';
import type { KeyProvider, KmsOperation } from './provider.js';

const SAMPLES = 256;
const WINDOW_MS = 5 * 60_000;

interface Sample {
  at: number;
  ms: number;
  /** KmsError code, `error` for anything else; undefined when the call succeeded. */
  error: string | undefined;
}

export interface OperationStats {
  operation: KmsOperation;
  calls: number;
  errors: number;
  errorRate: number;
  errorCodes: Record<string, number>;
  latencyMs: { p50: number; p95: number; max: number };
}

export class KmsCallStats {
  readonly windowMs = WINDOW_MS;
  readonly #samples = new Map<KmsOperation, Sample[]>();

  constructor(private readonly now: () => number = Date.now) {}

  record(operation: KmsOperation, ms: number, error: string | undefined): void {
    const samples = this.#samples.get(operation) ?? [];
    samples.push({ at: this.now(), ms, error });
    if (samples.length > SAMPLES) samples.shift();
    this.#samples.set(operation, samples);
  }

  /** Per operation called within the window. */
  recent(): OperationStats[] {
    const since = this.now() - WINDOW_MS;
    const stats: OperationStats[] = [];
    for (const [operation, all] of this.#samples) {
      const samples = all.filter((sample) => sample.at >= since);
      if (samples.length === 0) continue;
      const errorCodes: Record<string, number> = {};
      for (const { error } of samples) if (error !== undefined) errorCodes[error] = (errorCodes[error] ?? 0) + 1;
      const errors = Object.values(errorCodes).reduce((sum, n) => sum + n, 0);
      const sorted = samples.map((sample) => sample.ms).sort((a, b) => a - b);
      const at = (q: number) => round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
      stats.push({
        operation,
        calls: samples.length,
        errors,
        errorRate: errors / samples.length,
        errorCodes,
        latencyMs: { p50: at(0.5), p95: at(0.95), max: round(sorted.at(-1)!) },
      });
    }
    return stats.sort((a, b) => a.operation.localeCompare(b.operation));
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

/** Records every KMS call of `provider` in `stats`. */
export function withCallStats(provider: KeyProvider, stats: KmsCallStats): KeyProvider {
  return decorateProvider(provider, async (operation, call) => {
    const started = performance.now();
    try {
      const result = await call();
      stats.record(operation, performance.now() - started, undefined);
      return result;
    } catch (error) {
      stats.record(operation, performance.now() - started, isKmsError(error) ? error.code : 'error');
      throw error;
    }
  });
}
