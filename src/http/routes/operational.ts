/**
 * Routes for operators and orchestrators: liveness, readiness, Prometheus metrics, and the
 * load-shedding guard that answers 503 early when the event loop lags or memory runs short
 * (MAX_EVENT_LOOP_DELAY_MS, MAX_HEAP_USED_BYTES, MAX_RSS_BYTES; see memory-limits.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import underPressure from '@fastify/under-pressure';
import type { Config } from '../../config.js';
import type { ServiceMetrics } from '../../metrics/metrics.js';
import type { Readiness } from '../readiness.js';
import { Health, Readiness as ReadinessSchema } from '../schemas.js';
import { problemBody } from '../error-handler.js';
import { INTERNAL_ERROR } from './common.js';
import { memoryLimits } from '../memory-limits.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** @fastify/under-pressure's per-route handler; one that sends nothing lets the request through. */
    pressureHandler?: (request: FastifyRequest, reply: FastifyReply, type: string, value: number | undefined) => void;
  }
}

/**
 * The operational routes are never shed: under load, a liveness probe that failed would get the
 * instance killed (more load on the others), and /metrics is needed most exactly then. /readyz
 * stays about dependencies: an overloaded instance sheds requests itself, 503 + Retry-After.
 */
const NOT_SHED = { pressureHandler: () => undefined };

export interface OperationalDeps {
  metrics: ServiceMetrics;
  readiness: Readiness;
  config: Config;
}

export async function registerOperationalRoutes(app: FastifyInstance, deps: OperationalDeps): Promise<void> {
  const memory = memoryLimits(deps.config);
  if (deps.config.MAX_EVENT_LOOP_DELAY_MS > 0 || memory.maxHeapUsedBytes > 0 || memory.maxRssBytes > 0) {
    await app.register(underPressure, {
      // 0 turns a check off (under-pressure's own convention).
      maxEventLoopDelay: deps.config.MAX_EVENT_LOOP_DELAY_MS,
      maxHeapUsedBytes: memory.maxHeapUsedBytes,
      maxRssBytes: memory.maxRssBytes,
      retryAfter: 5,
      exposeStatusRoute: false,
      // Returning the body (not sending it here) makes under-pressure send it and stop the
      // request: a handler that sends and returns nothing lets the later hooks run as well
      // (authentication, limits, the audit trail). Its typings say void; its code sends any
      // non-null result.
      pressureHandler: ((request: FastifyRequest, reply: FastifyReply) => {
        reply.code(503).header('retry-after', '5').type('application/problem+json');
        return problemBody(request, { status: 503, code: 'Overloaded', detail: 'the service is overloaded; retry later' });
      }) as unknown as (request: FastifyRequest, reply: FastifyReply) => void,
    });
  }

  app.get(
    '/healthz',
    {
      config: NOT_SHED,
      schema: {
        operationId: 'liveness',
        tags: ['operations'],
        summary: 'Liveness: the process is up',
        description: 'Answers 200 while the process runs; checks no dependency (use /readyz for that). No authentication.',
        security: [],
        response: { 200: Health },
      },
    },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      config: NOT_SHED,
      schema: {
        operationId: 'readiness',
        tags: ['operations'],
        summary: 'Readiness: KMS answers and the audit sink is writable',
        description:
          'For load balancers and orchestrators: 200 when KMS answers DescribeKey on DEFAULT_KEY_ID (cached for ' +
          'READINESS_CACHE_MS) and the audit sink is writable, 503 with Retry-After otherwise. No authentication.',
        security: [],
        response: {
          200: { ...ReadinessSchema, description: 'Ready: both checks pass.', examples: [{ status: 'ready', checks: { kms: 'ok', audit: 'ok' } }] },
          503: {
            ...ReadinessSchema,
            description: 'Not ready: at least one check fails. Carries Retry-After.',
            headers: { 'retry-after': { type: 'integer', minimum: 0, description: 'Seconds to wait before checking again.' } },
            examples: [{ status: 'not ready', checks: { kms: 'unavailable', audit: 'ok' } }],
          },
        },
      },
    },
    async (_request, reply) => {
      const report = await deps.readiness.check();
      if (!report.ready) reply.code(503).header('retry-after', '5');
      return {
        status: report.ready ? 'ready' : 'not ready',
        checks: { kms: report.kms, audit: report.audit, ...report.auditCheckpoint },
      };
    },
  );

  app.get(
    '/metrics',
    {
      config: NOT_SHED,
      schema: {
        operationId: 'metrics',
        tags: ['operations'],
        summary: 'Prometheus metrics (text exposition format)',
        description:
          'Request, KMS, cache and audit metrics for Prometheus to scrape. No authentication: expose it only on the ' +
          'internal network.',
        security: [],
        produces: ['text/plain'],
        response: {
          200: {
            type: 'string',
            description: 'Prometheus text exposition format (version 0.0.4).',
            examples: ['# TYPE http_request_duration_seconds histogram\nhttp_request_duration_seconds_count{method="POST",route="/v1/encrypt",status_code="200"} 1\n'],
          },
          500: INTERNAL_ERROR,
        },
      },
    },
    async (_request, reply) => {
      reply.type(deps.metrics.registry.contentType);
      return deps.metrics.scrape();
    },
  );
}
