/**
 * Config -> the audit checkpointer: which signer (the local keystore's key, or KMS Sign on
 * AUDIT_SIGNING_KEY_ID), which instance name, which schedule. Part of the composition root.
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { AUDIT_LOG_STDOUT } from './audit/audit-log.js';
import type { AuditSigner } from './audit/signer.js';
import { Checkpointer, readTrailingCheckpoint, type CheckpointLog } from './audit/checkpointer.js';
import type { Config } from './config.js';
import type { CheckpointHealth } from './http/readiness.js';
import type { ServiceMetrics } from './metrics/metrics.js';
import { AwsAuditSigner } from './audit/signer-aws.js';
import { LocalAuditSigner } from './audit/signer-local.js';

/** Read before the audit log opens it: the checkpoint the file ends with, if any. */
export function trailingCheckpointOf(config: Config): ReturnType<typeof readTrailingCheckpoint> {
  return config.AUDIT_LOG === AUDIT_LOG_STDOUT ? undefined : readTrailingCheckpoint(config.AUDIT_LOG);
}

/** The signer, or undefined (with an error logged) when checkpoints are disabled. */
export function createAuditSigner(config: Config, logger: Logger): AuditSigner | undefined {
  if (config.KMS_PROVIDER === 'local') return LocalAuditSigner.open(config.LOCAL_KEYSTORE, config.AUDIT_SIGNING_KEY_ID);
  if (config.AUDIT_SIGNING_KEY_ID === undefined) {
    logger.error(
      'AUDIT CHECKPOINTS DISABLED: AUDIT_SIGNING_KEY_ID is not set, so the audit log is not signed and whoever can write it can rewrite or cut it undetected. Set it to an asymmetric SIGN_VERIFY KMS key (docs/AUDIT.md).',
    );
    return undefined;
  }
  return new AwsAuditSigner({ settings: config, keyId: config.AUDIT_SIGNING_KEY_ID, algorithm: config.AUDIT_SIGNING_ALGORITHM });
}

export function createCheckpointer(
  config: Config,
  logger: Logger,
  audit: CheckpointLog,
  signer: AuditSigner,
  metrics: ServiceMetrics,
  resumeFrom: ReturnType<typeof readTrailingCheckpoint>,
): Checkpointer {
  const checkpointer = new Checkpointer({
    audit,
    signer,
    instance: config.INSTANCE_ID ?? hostname(),
    everyEvents: config.AUDIT_CHECKPOINT_EVERY_EVENTS,
    intervalMs: config.AUDIT_CHECKPOINT_INTERVAL_MS,
    ...(config.AUDIT_DIGEST_FILE !== undefined && { digestFile: config.AUDIT_DIGEST_FILE }),
    ...(resumeFrom && { resumeFrom }),
    logger,
    onSigned: (at) => {
      metrics.auditCheckpointSignedAt = at;
    },
    onFailed: () => metrics.auditCheckpointFailures.inc(),
  });
  metrics.auditCheckpointUnsignedSince = () => checkpointer.status().unsignedSince;
  return checkpointer;
}

/** The /readyz detail: `delayed` once events have waited more than two intervals. */
export function checkpointHealth(checkpointer: Checkpointer | undefined, intervalMs: number): CheckpointHealth {
  return {
    check(now) {
      if (!checkpointer) return { auditCheckpoint: 'disabled' };
      const { lastSignedAt, unsignedSince } = checkpointer.status();
      const delayed = unsignedSince !== null && now - unsignedSince > 2 * intervalMs;
      return {
        auditCheckpoint: delayed ? 'delayed' : 'ok',
        ...(lastSignedAt !== null && { auditCheckpointAgeSeconds: Math.max(0, (now - lastSignedAt) / 1000) }),
      };
    },
  };
}
