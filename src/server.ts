/**
 * Process entry: config -> dependencies -> app -> listen, and graceful shutdown.
 *
 * SIGTERM/SIGINT: stop accepting connections, let in-flight requests finish (Fastify's close
 * waits for them), flush and close the audit log, zero every cached key, exit 0. A second
 * signal exits at once (close-with-grace). SIGHUP reloads the policy file.
 */
import closeWithGrace from 'close-with-grace';
import { buildApp } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createDeps } from './deps.js';
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
  const deps = await createDeps(config, logger);
  const app = await buildApp(deps);

  process.on('SIGHUP', () => {
    void deps.policy.reload().then((result) => {
      if (!result.ok) logger.error({ reason: result.error }, 'policy reload rejected; the previous policy stays in force');
    });
  });

  closeWithGrace({ delay: config.SHUTDOWN_GRACE_MS, logger }, async ({ signal, err }) => {
    if (err) logger.error({ errorName: err.name, stack: err.stack }, 'shutting down after an error');
    else logger.info({ signal }, 'shutting down: finishing in-flight requests');
    await app.close();
    await deps.audit.close();
    await deps.provider.close();
    logger.info('shutdown complete');
  });

  if (deps.policy.current.mode === 'dev') {
    logger.warn(
      { devToken: config.DEV_TOKEN === 'dev-token' ? 'default' : 'custom' },
      'DEV MODE: no POLICY_FILE, so any caller with DEV_TOKEN has every right on every key. Do not expose this instance.',
    );
  }
  await app.listen({ port: config.PORT, host: config.HOST });
}

main().catch((error: unknown) => {
  const err = error as Error;
  process.stderr.write(`fatal: ${err.name}: ${err.message}\n`);
  process.exit(1);
});
