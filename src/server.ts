/**
 * Process entry: config -> compose (compose.ts) -> app -> listen, and graceful shutdown.
 *
 * SIGTERM/SIGINT: stop accepting connections, let in-flight requests finish (Fastify's close
 * waits for them), flush and close the audit log, zero every cached key, exit 0. A second
 * signal exits at once (close-with-grace). SIGHUP reloads the policy file. SIGUSR2 reopens
 * the audit log after a rotation (logrotate's postrotate sends it).
 */
// First, before anything that loads http, Fastify or the AWS SDK: tracing.ts explains why.
import { stopTracing, tracingEnabled } from './tracing.js';
import closeWithGrace from 'close-with-grace';
import { buildApp } from './app.js';
import { ConfigError, DEFAULT_DEV_TOKEN, isLoopbackHost, loadConfig, type Config } from './config.js';
import { AuditWriteError } from './audit/errors.js';
import { PolicyError } from './authz/errors.js';
import { KeySetsError } from './keys/key-sets.js';
import { compose, type Service } from './compose.js';
import { KeystoreError } from './kms/local-keystore.js';
import { createAppLogger } from './logging.js';

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`configuration error: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createAppLogger(config);
  let service: Service;
  try {
    service = await compose(config, { logger });
  } catch (error) {
    const message = describeStartupError(error, config);
    if (message === undefined) throw error;
    process.stderr.write(`configuration error: ${message}\n`);
    process.exit(1);
  }
  const app = await buildApp(service);

  // The stores log the outcome of a reload (and why a rejected file was refused): the policy
  // and KEY_SETS_FILE, each kept as it was when its new file is invalid.
  process.on('SIGHUP', () => {
    void service.policy.reload();
    void service.keySets.reload();
  });

  // The audit log also follows a rotation by itself, before its next write or readiness
  // check; the signal makes the new file start (with AuditLogReopened) right away.
  process.on('SIGUSR2', () => {
    try {
      const reason = service.auditLog.reopen();
      if (reason) logger.info({ previousFile: reason, auditChainHead: service.auditLog.chainHead() }, 'audit log reopened after rotation');
      else logger.info('audit log reopen requested: the file at AUDIT_LOG is still the one being written');
    } catch (error) {
      logger.error({ err: { message: (error as Error).message } }, 'audit log reopen failed: audit writes fail closed until it succeeds');
    }
  });

  // Publish the audit chain's head now and then: a copy outside the log file is what lets a
  // verifier (npm run audit:verify -- --anchor=SEQ:SHA256 FILE) detect a truncated tail.
  const anchor = setInterval(() => logger.info({ auditChainHead: service.auditLog.chainHead() }, 'audit chain head'), 60_000);
  anchor.unref();

  // close-with-grace shuts down on SIGHUP and SIGUSR2 too by default; here SIGHUP means
  // "reload the policy" and SIGUSR2 "reopen the audit log".
  closeWithGrace({ delay: config.SHUTDOWN_GRACE_MS, logger, skip: ['SIGHUP', 'SIGUSR2'] }, async ({ signal, err }) => {
    if (err) logger.error({ errorName: err.name, stack: err.stack }, 'shutting down after an error');
    else logger.info({ signal }, 'shutting down: finishing in-flight requests');
    clearInterval(anchor);
    await app.close();
    // Leaves the fleet (its heartbeat key goes at once) once no request is left to answer.
    await service.fleet?.stop();
    // The final checkpoint signs everything written, so a clean stop leaves no unsigned tail.
    if (service.checkpointer && !(await service.checkpointer.close(Math.max(100, config.SHUTDOWN_GRACE_MS / 2)))) {
      logger.error('audit log closed without a final signed checkpoint (KMS Sign failed): its tail is unsigned');
    }
    logger.info({ auditChainHead: service.auditLog.chainHead() }, 'audit chain head at shutdown');
    await service.auditLog.close();
    await service.provider.close();
    // The spans of the last requests are still in the batch processor's queue.
    await stopTracing(Math.max(100, config.SHUTDOWN_GRACE_MS / 4));
    logger.info('shutdown complete');
  });

  if (service.policy.current.mode === 'dev') {
    logger.warn(
      { devToken: config.DEV_TOKEN === DEFAULT_DEV_TOKEN ? 'default' : 'custom' },
      'DEV MODE: no POLICY_FILE, so any caller with DEV_TOKEN has every right on every key. Do not expose this instance.',
    );
    if (!isLoopbackHost(config.HOST)) {
      // Error level on purpose: alerting on error lines should catch an open instance.
      logger.error(
        { host: config.HOST, devModeAllowNetwork: config.DEV_MODE_ALLOW_NETWORK },
        `DEV MODE OPEN TO THE NETWORK on ${config.HOST} (DEV_MODE_ALLOW_NETWORK): anyone who can reach this port and knows DEV_TOKEN can decrypt everything. Throwaway demos only.`,
      );
    }
  }
  if (tracingEnabled) logger.info('tracing on: spans exported over OTLP (OTEL_* variables)');
  await app.listen({ port: config.PORT, host: config.HOST });
}

/**
 * A startup failure caused by one setting's value (a file it names cannot be used), described
 * like a ConfigError: the variable, what is wrong, what it accepts. undefined for other errors.
 */
function describeStartupError(error: unknown, config: Config): string | undefined {
  if (error instanceof PolicyError) {
    return `POLICY_FILE=${config.POLICY_FILE ?? ''}: ${error.message}\nPOLICY_FILE accepts the path of a readable, valid policy file (YAML; see docs/POLICY.md)`;
  }
  if (error instanceof KeySetsError) {
    return `KEY_SETS_FILE=${config.KEY_SETS_FILE ?? ''}: ${error.message}\nKEY_SETS_FILE accepts the path of a readable, valid key sets file (YAML; see docs/OPERATIONS.md)`;
  }
  if (error instanceof AuditWriteError) {
    return `AUDIT_LOG=${config.AUDIT_LOG}: ${error.message}\nAUDIT_LOG accepts a file path this process can create or append to, or "stdout"`;
  }
  if (error instanceof KeystoreError) {
    return `LOCAL_KEYSTORE=${config.LOCAL_KEYSTORE}: ${error.message}\nLOCAL_KEYSTORE accepts the path of a keystore file this process can read and write (created on first start), mode 0600, owned by this process's user or root, in a directory only that user can write (no group- or other-writable directory above it either)`;
  }
  return undefined;
}

main().catch((error: unknown) => {
  const err = error as Error;
  process.stderr.write(`fatal: ${err.name}: ${err.message}\n`);
  process.exit(1);
});
