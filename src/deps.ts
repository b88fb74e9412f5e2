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
import { createKeyProvider } from './kms/create-provider.js';
import { ServiceMetrics } from './metrics/metrics.js';

export interface ProcessDeps extends AppDeps {
  audit: AuditLog;
  metrics: ServiceMetrics;
}

export async function createDeps(config: Config, logger: Logger): Promise<ProcessDeps> {
  const metrics = new ServiceMetrics();
  const policy = config.POLICY_FILE
    ? await PolicyStore.fromFile(config.POLICY_FILE, { logger })
    : PolicyStore.dev(config.DEV_TOKEN, { logger });
  const provider = createKeyProvider(config, logger);
  // Audit metrics are counted by the app's audit hook, the one place every event passes.
  const audit = AuditLog.open({ destination: config.AUDIT_LOG });
  return { config, provider, policy, audit, metrics, logger: logger as unknown as FastifyBaseLogger };
}
