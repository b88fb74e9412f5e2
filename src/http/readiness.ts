/**
 * Readiness: KMS answers a cheap call (DescribeKey on the default key), the audit sink is
 * writable, and the process is not shedding for memory (a replica that sheds every /v1 request
 * leaves rotation, and comes back on its own once memory is below its low-water mark). The KMS probe is cached for a few seconds so a busy load balancer cannot turn
 * health checks into a KMS load of their own.
 */
import type { AuditSink } from '../audit/sink.js';
import type { KeyProvider } from '../kms/provider.js';

export interface ReadinessReport {
  ready: boolean;
  kms: 'ok' | 'unavailable';
  audit: 'ok' | 'unavailable';
  /** 'shedding' while the process sheds for memory (memory-pressure.ts): out of rotation until it stops. */
  memory: 'ok' | 'shedding';
  /** Detail only: a checkpoint that cannot be signed never makes the instance not ready. */
  auditCheckpoint?: { auditCheckpoint: 'ok' | 'delayed' | 'disabled'; auditCheckpointAgeSeconds?: number };
}

/** What readiness shows of the audit checkpoints (src/audit/checkpointer.ts). */
export interface CheckpointHealth {
  check(now: number): NonNullable<ReadinessReport['auditCheckpoint']>;
}

export class Readiness {
  private kmsCheck: { at: number; ok: boolean } | undefined;
  private inFlight: Promise<boolean> | undefined;
  private checkpoints: CheckpointHealth | undefined;
  private memory: { readonly shedding: boolean } | undefined;

  constructor(
    private readonly provider: Pick<KeyProvider, 'describeKey'>,
    private readonly audit: Pick<AuditSink, 'isWritable'>,
    private readonly defaultKeyId: string,
    private readonly cacheMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Adds the audit checkpoint detail to every report. */
  showCheckpoints(checkpoints: CheckpointHealth): void {
    this.checkpoints = checkpoints;
  }

  /** Makes the instance not ready while it sheds for memory. */
  followMemoryPressure(memory: { readonly shedding: boolean }): void {
    this.memory = memory;
  }

  async check(): Promise<ReadinessReport> {
    const kms = await this.kmsReachable();
    const audit = this.audit.isWritable();
    const shedding = this.memory?.shedding === true;
    return {
      ready: kms && audit && !shedding,
      kms: kms ? 'ok' : 'unavailable',
      audit: audit ? 'ok' : 'unavailable',
      memory: shedding ? 'shedding' : 'ok',
      ...(this.checkpoints && { auditCheckpoint: this.checkpoints.check(this.now()) }),
    };
  }

  private async kmsReachable(): Promise<boolean> {
    if (this.kmsCheck && this.now() - this.kmsCheck.at < this.cacheMs) return this.kmsCheck.ok;
    this.inFlight ??= this.provider
      .describeKey(this.defaultKeyId)
      .then(() => true, () => false)
      .then((ok) => {
        this.kmsCheck = { at: this.now(), ok };
        this.inFlight = undefined;
        return ok;
      });
    return this.inFlight;
  }
}
