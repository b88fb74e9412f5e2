/**
 * The audit trail's HTTP side: every /v1 request has exactly one event written in onSend,
 * whether it succeeded, was denied, or failed (repeated authentication failures from one
 * address are counted into one summary event instead: auth-failures.ts). The event is built
 * from the request (who, from where), the facts its operation returned (recordOutcome) and the
 * problem it got, if any. onSend runs for handler results and error replies alike, before a
 * byte of the response leaves, which is what makes the audit fail-closed: if the event cannot
 * be written, the response is replaced by a 503 and no plaintext or ciphertext goes out.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiEventName } from '../audit/event.js';
import type { ServiceMetrics } from '../metrics/metrics.js';
import type { Outcome } from '../operations/operation.js';
import { toAuditEvent, type AuditSink, type AuditState } from './audit-event.js';
import { prepareProblem } from './send-problem.js';

declare module 'fastify' {
  interface FastifyRequest {
    audit: AuditState | undefined;
  }
  interface FastifyContextConfig {
    eventName?: ApiEventName;
  }
}

export interface AuditTrailDeps {
  audit: AuditSink;
  metrics: ServiceMetrics;
}

/** Registered before authentication, whose failures it records. */
export function registerAuditTrail(scope: FastifyInstance, deps: AuditTrailDeps): void {
  scope.decorateRequest('audit', undefined);

  scope.addHook('onRequest', async (request) => {
    request.audit = {};
  });

  scope.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const state = request.audit;
    if (!state) return payload;
    request.audit = undefined;
    try {
      await deps.audit.write(toAuditEvent(request, reply.statusCode, state));
      deps.metrics.auditEvents.inc();
      return payload;
    } catch (error) {
      deps.metrics.auditFailures.inc();
      request.log.error({ errorName: (error as Error).name }, 'audit event could not be written: failing the request closed');
      return JSON.stringify(
        prepareProblem(request, reply, {
          status: 503,
          code: 'AuditUnavailable',
          detail: 'the audit log cannot be written; the result was withheld',
          retryAfterSeconds: 5,
        }),
      );
    }
  });
}

/** Keeps the operation's facts for the audit event, then gives its result or throws its error. */
export function recordOutcome<R>(request: FastifyRequest, outcome: Outcome<R>): R {
  if (request.audit) request.audit.facts = outcome.facts;
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}
