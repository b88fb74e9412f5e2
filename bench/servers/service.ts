/**
 * Case (c) and the layer variants: THIS service, composed exactly as src/server.ts composes it
 * (loadConfig -> createAppLogger -> compose -> buildApp), configured through the same
 * environment variables. The runner sets POLICY_FILE, AUDIT_LOG, LOG_LEVEL, CACHE_MAX_MESSAGES,
 * KMS_PROVIDER/KMS_ENDPOINT and so on per case.
 *
 * One knob is not a service setting: BENCH_AUDIT=discard swaps the audit log for a sink that
 * accepts and drops every event (a compose override, as a test would), to measure
 * what the audit layer costs.
 *
 * The discarding sink releases each request at the end of the event-loop turn, exactly when the
 * real audit log's group commit would (setImmediate): a sink that answered at once would measure
 * the answer timing (a turn's responses written together or one by one), not the audit's own
 * work (serialization, hashing, the write). docs/BENCHMARKS.md has the figures.
 */
// First, as in src/server.ts: tracing (on only with OTEL_EXPORTER_OTLP_ENDPOINT) must patch
// http and the AWS SDK before they load.
import { stopTracing } from '../../src/tracing.js';
import { buildApp } from '../../src/app.js';
import { compose } from '../../src/compose.js';
import { loadConfig } from '../../src/config.js';
import type { AuditSink } from '../../src/audit/sink.js';
import { createAppLogger } from '../../src/logging.js';
import { fail, serve } from './common.js';

/** One promise per event-loop turn, shared by the turn's events, as the real log's batch is. */
let turnEnd: Promise<void> | undefined;
const discardAudit: AuditSink = {
  write: () =>
    (turnEnd ??= new Promise<void>((resolve) =>
      setImmediate(() => {
        turnEnd = undefined;
        resolve();
      }),
    )),
  summarizeAuthFailures: async () => {},
  summarizeRefusals: async () => {},
  recordFleetAction: async () => {},
  isWritable: () => true,
};

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createAppLogger(config, { pretty: false });
  const service = await compose(config, { logger, ...(process.env.BENCH_AUDIT === 'discard' && { auditSink: discardAudit }) });
  const app = await buildApp(service);
  await serve(app, async () => {
    await service.close();
    await stopTracing(5_000);
  });
}

main().catch(fail);
