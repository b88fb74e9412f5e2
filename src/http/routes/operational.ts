/**
 * Routes for operators and orchestrators: liveness, readiness, Prometheus metrics, and the
 * load-shedding guard that answers 503 early when the event loop lags.
 */
import type { FastifyInstance } from 'fastify';
import underPressure from '@fastify/under-pressure';
import type { Config } from '../../config.js';
import type { ServiceMetrics } from '../../metrics/metrics.js';
import type { Readiness } from '../readiness.js';
import { Health, Readiness as ReadinessSchema } from '../schemas.js';
import { problemBody } from '../error-handler.js';
import { Type } from 'typebox';

export interface OperationalDeps {
  metrics: ServiceMetrics;
  readiness: Readiness;
  config: Config;
}

export async function registerOperationalRoutes(app: FastifyInstance, deps: OperationalDeps): Promise<void> {
  if (deps.config.MAX_EVENT_LOOP_DELAY_MS > 0) {
    await app.register(underPressure, {
      maxEventLoopDelay: deps.config.MAX_EVENT_LOOP_DELAY_MS,
      retryAfter: 5,
      exposeStatusRoute: false,
      pressureHandler: (request, reply) => {
        void reply
          .code(503)
          .header('retry-after', '5')
          .type('application/problem+json')
          .send(problemBody(request, { status: 503, code: 'Overloaded', detail: 'the service is overloaded; retry later' }));
      },
    });
  }

  app.get(
    '/healthz',
    { schema: { tags: ['operations'], summary: 'Liveness: the process is up', response: { 200: Health } } },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Readiness: KMS answers and the audit sink is writable',
        response: { 200: ReadinessSchema, 503: ReadinessSchema },
      },
    },
    async (_request, reply) => {
      const report = await deps.readiness.check();
      if (!report.ready) reply.code(503).header('retry-after', '5');
      return { status: report.ready ? 'ready' : 'not ready', checks: { kms: report.kms, audit: report.audit } };
    },
  );

  app.get(
    '/metrics',
    {
      schema: {
        tags: ['operations'],
        summary: 'Prometheus metrics (text exposition format)',
        produces: ['text/plain'],
        response: { 200: Type.String({ description: 'Prometheus text format' }), 500: Type.Ref('Problem') },
      },
    },
    async (_request, reply) => {
      reply.type(deps.metrics.registry.contentType);
      return deps.metrics.scrape();
    },
  );
}
