/**
 * buildApp(service): the service composed by compose.ts, as a Fastify instance, without
 * listen(). Tests build it per suite; src/server.ts builds it once and listens.
 *
 * Request path, one direction only (docs/ARCHITECTURE.md): request id -> load shedding (other
 *   paths refused here; /v1 marked) -> authenticate -> a marked /v1 request refused, audited ->
 *   in-flight cap, rate limit, operation gate (all before the body is read) -> body (size,
 *   JSON nesting and the request-buffer budget bounded) -> route (validate, decode) ->
 *   operation (KeyGuard, envelope service -> data-key cache -> KMS) -> route (encode); and on
 *   every /v1 request, one audit event (onSend) written from the facts the operation returned,
 *   then a 429 held for its Retry-After (admission/refusal-hold.ts).
 *
 * Server timeouts (slow or silent clients; see serverTimeouts below):
 *   headersTimeout   HEADERS_TIMEOUT_MS, default min(10 s, REQUEST_TIMEOUT_MS): a client
 *                    trickling its headers (slowloris) gets 408 and is closed;
 *   requestTimeout   REQUEST_TIMEOUT_MS: the whole request, body included, must arrive in it
 *                    (not on the /stream routes: STREAM_IDLE_TIMEOUT_MS, http/streams/);
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
import type { Config } from './config.js';
import type { Service } from './compose.js';
import type { EnvelopeService } from './keys/envelope-service.js';
import { AccessLog } from './http/access-log.js';
import { registerAuditTrail } from './http/audit-trail.js';
import { registerAuthentication } from './http/authentication.js';
import { registerErrorHandling } from './http/error-handler.js';
import { registerJsonBodyParser } from './http/json-body.js';
import { registerNoStore } from './http/no-store.js';
import { registerCloseOnShutdown } from './http/close-on-shutdown.js';
import { prepareProblem } from './http/send-problem.js';
import { registerLoadShedding, registerShedAfterAuthentication } from './admission/load-shedding.js';
import { registerOpenApi } from './http/openapi/openapi.js';
import { registerRefusalHold } from './admission/refusal-hold.js';
import { registerOperationalRoutes } from './http/routes/operational.js';
import { registerV1Routes } from './http/routes/v1.js';
import { schemaRegExp } from './http/schemas/schema-regexp.js';
import { kmsCallBoundMs } from './kms/aws.js';
import type { CircuitBreaker } from './kms/circuit-breaker.js';
import type { ServiceMetrics } from './metrics/metrics.js';
import type { Readiness } from './http/readiness.js';

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

/** Fastify wired to the composed service (compose.ts): hooks, plugins and routes in request order. */
export async function buildApp(service: Service): Promise<FastifyInstance> {
  const { config, metrics, envelope, readiness, circuit, holds, authFailures } = service;
  const app = Fastify({
    loggerInstance: service.logger as unknown as FastifyBaseLogger,
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

  app.decorate('services', { envelope, metrics, readiness, circuit });
  // Hooks with nothing to await take Fastify's `done` callback: an async hook costs a promise and a
  // microtask per request for nothing.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    metrics.httpDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    done();
  });
  app.addHook('onClose', async () => service.stop());

  // Every body is JSON (the binary routes parse octet-stream in their own scope). Fastify also parses text/plain by default;
  // without that parser a text/plain body is a 415 like any other non-JSON type, instead of a
  // string that fails schema validation with a confusing 400.
  app.removeContentTypeParser('text/plain');
  registerJsonBodyParser(app, Math.min(config.JSON_BODY_LIMIT_BYTES, config.BODY_LIMIT_BYTES));
  registerErrorHandling(app);
  registerNoStore(app);
  registerCloseOnShutdown(app);
  await registerOpenApi(app, service.liveExamples);
  // Before every route: its onRequest hook is the first to run (after the request id), so an
  // overloaded instance refuses before it reads a body (/v1: right after authentication, so
  // the refusal is audited against its principal).
  await registerLoadShedding(app, config, service.memoryPressure, app.log, prepareProblem);
  await registerOperationalRoutes(app, { metrics, readiness, config });
  // Before the audit log closes (server.ts closes the app first): no count is lost.
  app.addHook('onClose', async () => {
    await authFailures.flush();
    await service.buffers.refusals.flush();
  });
  // preClose: before the server waits for open requests, which held ones would otherwise delay.
  app.addHook('preClose', async () => holds.releaseAll());
  await app.register(async function v1Routes(v1) {
    registerAuditTrail(v1, { audit: service.audit, metrics });
    registerRefusalHold(v1, holds, (outcome) => metrics.refusalHolds.inc({ outcome }));
    registerAuthentication(v1, { policy: service.policy, authFailures, metrics, ...(service.shared.authFailures && { sharedAuthFailures: service.shared.authFailures }) });
    registerShedAfterAuthentication(v1, service.buffers.refusals);
    await registerV1Routes(v1, {
      config,
      operations: service.operations,
      turns: service.turns,
      buffers: service.buffers,
      admin: service.admin,
      audit: service.audit,
      ...(service.shared.rateLimit && { sharedRateLimit: service.shared.rateLimit }),
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
