/**
 * The composition root: Config -> the real dependencies buildApp needs (key provider, policy
 * store, audit log, loggers). Kept apart from server.ts so a test can build exactly what the
 * process builds.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Logger } from 'pino';
import type { AppDeps } from './app.js';
import { AuditLog } from './audit/index.js';
import { PolicyStore } from './authz/store.js';
import type { Config } from './config.js';
import type { Checkpointer } from './audit/checkpointer.js';
import { checkpointHealth, createAuditSigner, createCheckpointer, trailingCheckpointOf } from './checkpoints.js';
import { createKeyProvider } from './kms/create-provider.js';
import { ServiceMetrics } from './metrics/metrics.js';

export interface ProcessDeps extends AppDeps {
  audit: AuditLog;
  metrics: ServiceMetrics;
  /** Signed audit checkpoints; undefined when disabled (aws without AUDIT_SIGNING_KEY_ID). */
  checkpointer?: Checkpointer;
}

export async function createDeps(config: Config, logger: Logger): Promise<ProcessDeps> {
  const metrics = new ServiceMetrics();
  const policy = config.POLICY_FILE
    ? await PolicyStore.fromFile(config.POLICY_FILE, { logger })
    : PolicyStore.dev(config.DEV_TOKEN, { logger });
  const provider = createKeyProvider(config, logger);
  // Audit metrics are counted by the app's audit hook, the one place every event passes.
  // After the provider: the local signer keeps its key in the keystore the provider creates.
  const signer = createAuditSigner(config, logger);
  const trailing = trailingCheckpointOf(config);
  let checkpointer: Checkpointer | undefined;
  const audit = AuditLog.open({
    destination: config.AUDIT_LOG,
    onWritten: () => checkpointer?.noteEvent(),
    onReopened: () => checkpointer?.noteRotation(),
  });
  if (signer) {
    checkpointer = createCheckpointer(config, logger, audit, signer, metrics, trailing);
    checkpointer.start();
  }
  const checkpoints = checkpointHealth(checkpointer, config.AUDIT_CHECKPOINT_INTERVAL_MS);
  return {
    config,
    provider,
    policy,
    audit,
    metrics,
    checkpoints,
    ...(checkpointer && { checkpointer }),
    logger: logger as unknown as FastifyBaseLogger,
  };
}
