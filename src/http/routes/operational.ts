/**
 * Routes for operators and orchestrators: liveness, readiness, Prometheus metrics. None is
 * ever shed (load-shedding.ts): under load, a liveness probe that failed would get the
 * instance killed (more load on the others), and /metrics is needed most exactly then. /readyz
 * fails while the instance sheds for memory (a state with hysteresis, not one request's lag),
 * so it leaves rotation until memory is back; event-loop lag is shed per request only.
 */
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../config.js';
import type { ServiceMetrics } from '../../metrics/metrics.js';
import type { Readiness } from '../readiness.js';
import { Health, Readiness as ReadinessSchema } from '../schemas/schemas.js';
import { NOT_SHED } from '../../admission/load-shedding.js';
import { INTERNAL_ERROR } from './common.js';

export interface OperationalDeps {
  metrics: ServiceMetrics;
  readiness: Readiness;
  config: Config;
}

export async function registerOperationalRoutes(app: FastifyInstance, deps: OperationalDeps): Promise<void> {
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
          'READINESS_CACHE_MS), the audit sink is writable and the instance is not shedding for memory, 503 with ' +
          'Retry-After otherwise. No authentication.',
        security: [],
        response: {
          200: { ...ReadinessSchema, description: 'Ready: every check passes.', examples: [{ status: 'ready', checks: { kms: 'ok', audit: 'ok', memory: 'ok' } }] },
          503: {
            ...ReadinessSchema,
            description: 'Not ready: at least one check fails. Carries Retry-After.',
            headers: { 'retry-after': { type: 'integer', minimum: 0, description: 'Seconds to wait before checking again.' } },
            examples: [{ status: 'not ready', checks: { kms: 'unavailable', audit: 'ok', memory: 'ok' } }],
          },
        },
      },
    },
    async (_request, reply) => {
      const report = await deps.readiness.check();
      if (!report.ready) reply.code(503).header('retry-after', '5');
      return {
        status: report.ready ? 'ready' : 'not ready',
        checks: { kms: report.kms, audit: report.audit, memory: report.memory, ...report.auditCheckpoint },
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
