/**
 * buildApp(deps): the whole service as a Fastify instance, without listen(). Tests build it
 * per suite; src/server.ts builds it once and listens.
 *
 * Request path, one direction only:
 *   route (validate) -> authenticate -> rate limit -> policy (KeyGuard) -> envelope service
 *   -> data-key cache -> KMS provider; and on every /v1 request, one audit event (onSend).
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { AuditSink } from './http/audit-event.js';
import type { PolicyStore } from './authz/store.js';
import type { Config } from './config.js';
import { DataKeyCache } from './envelope/data-key-cache.js';
import { KeyDirectory } from './envelope/key-directory.js';
import { EnvelopeService } from './envelope/service.js';
import { registerAuditTrail } from './http/audit-hook.js';
import { registerErrorHandling } from './http/error-handler.js';
import { KeyGuard } from './http/key-guard.js';
import { registerOpenApi } from './http/openapi.js';
import { registerOperationalRoutes } from './http/routes/operational.js';
import { registerV1Routes } from './http/routes/v1.js';
import { instrumentProvider } from './kms/instrumented.js';
import type { KeyProvider } from './kms/provider.js';
import { ServiceMetrics } from './metrics/metrics.js';
import { Readiness } from './http/readiness.js';

export interface AppDeps {
  config: Config;
  provider: KeyProvider;
  policy: PolicyStore;
  audit: AuditSink;
  logger?: FastifyBaseLogger;
  metrics?: ServiceMetrics;
  /** Injected clock for cache ages (tests). */
  now?: () => number;
}

export interface AppServices {
  envelope: EnvelopeService;
  metrics: ServiceMetrics;
  readiness: Readiness;
}

declare module 'fastify' {
  interface FastifyInstance {
    services: AppServices;
  }
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const metrics = deps.metrics ?? new ServiceMetrics();
  const provider = instrumentProvider(deps.provider, metrics);
  const now = deps.now ?? Date.now;
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
  metrics.trackCacheSize('encrypt', () => caches.encrypt.size);
  metrics.trackCacheSize('decrypt', () => caches.decrypt.size);
  const envelope = new EnvelopeService(provider, caches);
  const directory = new KeyDirectory(provider);
  const readiness = new Readiness(provider, deps.audit, config.DEFAULT_KEY_ID, config.READINESS_CACHE_MS);

  const app = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: false }),
    bodyLimit: config.BODY_LIMIT_BYTES,
    requestTimeout: config.REQUEST_TIMEOUT_MS,
    // A request id from a trusted proxy is kept (it then matches across hops); anything that
    // is not a short token is replaced so callers cannot forge log or audit lines with it.
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    requestIdHeader: false,
    ajv: {
      customOptions: {
        // Reject unknown fields instead of silently dropping them: a typo such as `keyid`
        // must not quietly fall back to the default key.
        removeAdditional: false,
        coerceTypes: false,
        allErrors: false,
      },
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.decorate('services', { envelope, metrics, readiness });
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
  });

  registerErrorHandling(app);
  await registerOpenApi(app);
  await registerOperationalRoutes(app, { metrics, readiness, config });
  await app.register(async (v1) => {
    registerAuditTrail(v1, { audit: deps.audit, metrics, policy: deps.policy });
    await registerV1Routes(v1, {
      config,
      policy: deps.policy,
      operations: { guard: new KeyGuard(directory), envelope, defaultKeyId: config.DEFAULT_KEY_ID },
      directory,
    });
  }, { prefix: '/v1' });
  return app;
}
