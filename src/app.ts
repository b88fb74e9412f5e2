/**
 * buildApp(deps): the whole service as a Fastify instance, without listen(). Tests build it
 * per suite; src/server.ts builds it once and listens.
 *
 * Request path, one direction only (docs/ARCHITECTURE.md): request id -> load shedding ->
 *   authenticate -> in-flight cap, rate limit (all before the body is read) -> body (size and
 *   JSON nesting bounded) -> route (validate, decode) -> operation (KeyGuard, envelope service
 *   -> data-key cache -> KMS) -> route (encode); and on every /v1 request, one audit event
 *   (onSend) written from the facts the operation returned, then a 429 held for its
 *   Retry-After (http/refusal-hold.ts).
 *
 * Server timeouts (slow or silent clients; see serverTimeouts below):
 *   headersTimeout   HEADERS_TIMEOUT_MS, default min(10 s, REQUEST_TIMEOUT_MS): a client
 *                    trickling its headers (slowloris) gets 408 and is closed;
 *   requestTimeout   REQUEST_TIMEOUT_MS: the whole request, body included, must arrive in it;
 *   connectionsCheckingInterval  how often Node enforces the two above: ≤ 1 s;
 *   keepAliveTimeout 72 s (Fastify's default, above the 60 s idle timeout of common load
 *                    balancers, so they close idle connections first and never race us);
 *   connectionTimeout a socket silent in both directions (e.g. a client that stopped reading
 *                    its response) is destroyed after max(2 × REQUEST_TIMEOUT_MS, 4 × the
 *                    longest KMS call + 1 s), so it never cuts a request waiting on KMS.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { AuditSink } from './http/audit-event.js';
import type { PolicyStore } from './authz/store.js';
import type { Config } from './config.js';
import { DataKeyCache } from './envelope/data-key-cache.js';
import { KmsBudgets } from './envelope/kms-budget.js';
import { EnvelopeService } from './envelope/service.js';
import { AccessLog } from './http/access-log.js';
import { AuthFailureTracker } from './http/auth-failures.js';
import { registerAuditTrail } from './http/audit-trail.js';
import { registerAuthentication } from './http/authentication.js';
import { registerErrorHandling } from './http/error-handler.js';
import { registerJsonBodyParser } from './http/json-body.js';
import { registerNoStore } from './http/no-store.js';
import { LiveExamples } from './http/live-examples.js';
import { RequestTurns } from './http/in-flight-limit.js';
import { registerLoadShedding, registerShedAfterAuthentication } from './http/load-shedding.js';
import { memoryLimits } from './http/memory-limits.js';
import { MemoryPressure } from './http/memory-pressure.js';
import { RefusalSummaries } from './http/refusal-summaries.js';
import { RequestBufferBudget } from './http/request-buffer-budget.js';
import { registerOpenApi } from './http/openapi.js';
import { RefusalHolds, registerRefusalHold } from './http/refusal-hold.js';
import { registerOperationalRoutes } from './http/routes/operational.js';
import { registerV1Routes } from './http/routes/v1.js';
import { schemaRegExp } from './http/schema-regexp.js';
import { kmsCallBoundMs } from './kms/aws.js';
import { KmsCallStats, withCallStats } from './kms/call-stats.js';
import { CIRCUIT_STATE_VALUE, CircuitBreaker, withCircuitBreaker } from './kms/circuit-breaker.js';
import { KeyDirectory } from './kms/key-directory.js';
import type { KeyProvider } from './kms/provider.js';
import { instrumentProvider } from './metrics/kms-instrumentation.js';
import { ServiceMetrics } from './metrics/metrics.js';
import { Readiness, type CheckpointHealth } from './http/readiness.js';
import { KeyGuard } from './operations/key-guard.js';

export interface AppDeps {
  config: Config;
  provider: KeyProvider;
  policy: PolicyStore;
  audit: AuditSink;
  logger?: FastifyBaseLogger;
  metrics?: ServiceMetrics;
  /** The audit checkpoints' state, shown as a /readyz detail. */
  checkpoints?: CheckpointHealth;
  /** Injected clock for cache ages (tests). */
  now?: () => number;
}

export interface AppServices {
  envelope: EnvelopeService;
  metrics: ServiceMetrics;
  readiness: Readiness;
  /** The KMS circuit breaker (its state is also the kms_circuit_state gauge). */
  circuit: CircuitBreaker;
}

declare module 'fastify' {
  interface FastifyInstance {
    services: AppServices;
  }
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const metrics = deps.metrics ?? new ServiceMetrics();
  const now = deps.now ?? Date.now;
  // The breaker sits outside the instrumentation: a call it refuses never reaches KMS, so it
  // must not appear in kms_requests_total or the KMS latency histogram (it has its own counter).
  let log: FastifyBaseLogger | undefined;
  const circuit = new CircuitBreaker({
    failureThreshold: config.KMS_BREAKER_FAILURES,
    cooldownMs: config.KMS_BREAKER_COOLDOWN_MS,
    onStateChange: ({ from, to, consecutiveFailures }) => {
      const line = { circuitFrom: from, circuitTo: to, consecutiveFailures, cooldownMs: config.KMS_BREAKER_COOLDOWN_MS };
      if (to === 'open') log?.warn(line, 'KMS circuit opened: failing KMS calls fast until a probe succeeds');
      else log?.info(line, `KMS circuit ${to}`);
    },
    onReject: (operation) => metrics.kmsCircuitRejections.inc({ operation }),
  });
  metrics.trackCircuitState(() => CIRCUIT_STATE_VALUE[circuit.state]);
  // Recent calls for GET /v1/admin/kms, inside the breaker like the metrics: only calls that reached KMS.
  const kmsCalls = new KmsCallStats(now);
  const provider = withCircuitBreaker(withCallStats(instrumentProvider(deps.provider, metrics), kmsCalls), circuit);
  const limits = {
    maxAgeMs: config.CACHE_MAX_AGE_MS,
    maxMessages: config.CACHE_MAX_MESSAGES,
    maxBytes: config.CACHE_MAX_BYTES,
    capacity: config.CACHE_CAPACITY,
  };
  const caches = {
    encrypt: new DataKeyCache('encrypt', limits, metrics, now),
    decrypt: new DataKeyCache('decrypt', limits, metrics, now),
  };
  metrics.trackPolicy(() => deps.policy.current);
  const stopCountingReloads = deps.policy.onReload((result) => metrics.policyReloaded(result.ok));
  metrics.trackCacheSize('encrypt', () => caches.encrypt.size);
  metrics.trackCacheSize('decrypt', () => caches.decrypt.size);
  const envelope = new EnvelopeService(provider, caches);
  const directory = new KeyDirectory(provider);
  const budgets = new KmsBudgets({
    perSecond: config.KMS_BUDGET_PER_SECOND,
    burst: config.KMS_BUDGET_BURST,
    concurrency: config.KMS_CONCURRENCY_PER_PRINCIPAL,
    pacePerSecond: config.KMS_PACE_PER_SECOND,
    now,
    onReject: (operation) => metrics.kmsBudgetRejections.inc({ operation }),
  });
  metrics.kmsCallsQueuedNow = () => budgets.queued;
  const readiness = new Readiness(provider, deps.audit, config.DEFAULT_KEY_ID, config.READINESS_CACHE_MS);
  if (deps.checkpoints) readiness.showCheckpoints(deps.checkpoints);

  const app = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: false }),
    bodyLimit: config.BODY_LIMIT_BYTES,
    ...serverTimeouts(config),
    // Always ours: the caller's x-request-id is kept apart (http/caller-request-id.ts).
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    logController: new AccessLog(),
    ajv: {
      customOptions: {
        // Reject unknown fields instead of silently dropping them: a typo such as `keyid`
        // must not quietly fall back to the default key.
        removeAdditional: false,
        coerceTypes: false,
        allErrors: false,
        // Linear-time matching for the base64 pattern (see schemaRegExp).
        code: { regExp: schemaRegExp },
      },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  log = app.log;
  app.decorate('services', { envelope, metrics, readiness, circuit });
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    metrics.httpDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });
  app.addHook('onClose', async () => {
    envelope.clear();
    stopCountingReloads();
  });

  // Every body is JSON (the binary routes parse octet-stream in their own scope). Fastify also parses text/plain by default;
  // without that parser a text/plain body is a 415 like any other non-JSON type, instead of a
  // string that fails schema validation with a confusing 400.
  app.removeContentTypeParser('text/plain');
  registerJsonBodyParser(app, Math.min(config.JSON_BODY_LIMIT_BYTES, config.BODY_LIMIT_BYTES));
  registerErrorHandling(app);
  registerNoStore(app);
  await registerOpenApi(app, deps.provider.kind === 'local' ? new LiveExamples({ envelope, directory, defaultKeyId: config.DEFAULT_KEY_ID }) : undefined);
  // Memory as a budget (docs/OPERATIONS.md): request bodies counted per principal and in all,
  // shedding with hysteresis on what the process can give back, /readyz failing meanwhile, and
  // the refusals audited per principal and window.
  const memory = memoryLimits(config);
  const memoryPressure = new MemoryPressure({
    maxMemoryUsedBytes: memory.maxMemoryUsedBytes,
    maxHeapUsedBytes: memory.maxHeapUsedBytes,
    maxRssBytes: memory.maxRssBytes,
    lowWaterPercent: memory.lowWaterPercent,
  });
  readiness.followMemoryPressure(memoryPressure);
  const refusals = new RefusalSummaries({
    windowMs: config.REFUSAL_SUMMARY_WINDOW_MS,
    audit: deps.audit,
    onWritten: () => metrics.auditEvents.inc(),
    onSummaryError: (error, details) => {
      metrics.auditFailures.inc();
      log?.error({ errorName: (error as Error).name, refusalsSummary: details }, 'audit summary of refusals could not be written');
    },
  });
  app.addHook('onClose', async () => refusals.flush());
  const buffers = {
    budget: new RequestBufferBudget({ total: memory.requestBufferMaxBytes, perPrincipal: memory.requestBufferMaxBytesPerPrincipal }),
    refusals,
  };
  metrics.requestBufferBytesNow = () => buffers.budget.bufferedBytes;
  metrics.memorySheddingNow = () => memoryPressure.shedding;
  // Before every route: its onRequest hook is the first to run (after the request id), so an
  // overloaded instance refuses before it reads a body (/v1: right after authentication).
  await registerLoadShedding(app, config, memoryPressure, app.log);
  await registerOperationalRoutes(app, { metrics, readiness, config });
  const authFailures = new AuthFailureTracker({
    maxFailures: config.AUTH_FAILURE_MAX,
    windowMs: config.AUTH_FAILURE_WINDOW_MS,
    writeSummary: async (details) => {
      await deps.audit.summarizeAuthFailures(details);
      metrics.auditEvents.inc();
    },
    onSummaryError: (error, details) => {
      metrics.auditFailures.inc();
      // The counts must not vanish: the app log keeps them (they hold no secret).
      log?.error({ errorName: (error as Error).name, authFailuresSummary: details }, 'audit summary of failed authentications could not be written');
    },
  });
  // Before the audit log closes (server.ts closes the app first): no count is lost.
  app.addHook('onClose', async () => authFailures.flush());
  const holds = new RefusalHolds({ maxMs: config.REFUSAL_HOLD_MAX_MS, perCaller: config.REFUSAL_HOLD_PER_CALLER, total: config.REFUSAL_HOLD_TOTAL });
  metrics.refusalsHeldNow = () => holds.heldCount;
  // preClose: before the server waits for open requests, which held ones would otherwise delay.
  app.addHook('preClose', async () => holds.releaseAll());
  const turns = new RequestTurns({ maxInFlight: config.MAX_IN_FLIGHT_PER_PRINCIPAL, concurrency: config.REQUEST_CONCURRENCY_PER_PRINCIPAL });
  metrics.requestsWaitingNow = () => turns.waitingCount;
  await app.register(async (v1) => {
    registerAuditTrail(v1, { audit: deps.audit, metrics });
    registerRefusalHold(v1, holds, (outcome) => metrics.refusalHolds.inc({ outcome }));
    registerAuthentication(v1, { policy: deps.policy, authFailures, metrics });
    registerShedAfterAuthentication(v1, refusals);
    await registerV1Routes(v1, {
      config,
      operations: { guard: new KeyGuard(directory), envelope, directory, defaultKeyId: config.DEFAULT_KEY_ID },
      budgets,
      turns,
      buffers,
      admin: {
        envelope,
        directory,
        policy: deps.policy,
        circuit,
        kmsCalls,
        budgets,
        kms: {
          provider: deps.provider.kind,
          region: deps.provider.kind === 'aws' ? config.AWS_REGION : undefined,
          breakerFailures: config.KMS_BREAKER_FAILURES,
          breakerCooldownMs: config.KMS_BREAKER_COOLDOWN_MS,
        },
      },
      audit: deps.audit,
    });
  }, { prefix: '/v1' });
  return app;
}

/** Socket-level timeouts against slow and silent clients (see the header comment). */
export function serverTimeouts(config: Config): {
  requestTimeout: number;
  connectionTimeout: number;
  keepAliveTimeout: number;
  http: { headersTimeout: number; requestTimeout: number; connectionsCheckingInterval: number };
} {
  const requestTimeout = config.REQUEST_TIMEOUT_MS;
  const headersTimeout = config.HEADERS_TIMEOUT_MS ?? Math.min(10_000, requestTimeout);
  return {
    requestTimeout,
    connectionTimeout: Math.max(2 * requestTimeout, 4 * kmsCallBoundMs(config) + 1_000),
    keepAliveTimeout: 72_000,
    http: {
      headersTimeout,
      requestTimeout,
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(headersTimeout / 2))),
    },
  };
}
