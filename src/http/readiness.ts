/**
 * Readiness: KMS answers a cheap call (DescribeKey on the default key) and the audit sink is
 * writable. The KMS probe is cached for a few seconds so a busy load balancer cannot turn
 * health checks into a KMS load of their own.
 */
import type { AuditSink } from './audit-event.js';
import type { KeyProvider } from '../kms/provider.js';

export interface ReadinessReport {
  ready: boolean;
  kms: 'ok' | 'unavailable';
  audit: 'ok' | 'unavailable';
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

  async check(): Promise<ReadinessReport> {
    const kms = await this.kmsReachable();
    const audit = this.audit.isWritable();
    return {
      ready: kms && audit,
      kms: kms ? 'ok' : 'unavailable',
      audit: audit ? 'ok' : 'unavailable',
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
