/**
 * The audit trail's HTTP side: every /v1 request gets an AuditRecord when it arrives, is
 * authenticated here, and has exactly one event written in onSend, whether it succeeded,
 * was denied, or failed (repeated authentication failures from one address are counted into
 * one summary event instead: auth-failures.ts). onSend runs for handler results and error
 * replies alike, before a byte of the response leaves, which is what makes the audit
 * fail-closed: if the event cannot be written, the response is replaced by a 503 and no
 * plaintext or ciphertext goes out.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiEventName, RouteEventName } from '../audit/event.js';
import type { Principal } from '../authz/principal.js';
import type { PolicyStore } from '../authz/store.js';
import type { Policy } from '../authz/policy.js';
import type { ServiceMetrics } from '../metrics/metrics.js';
import { AuthenticationError } from '../authz/errors.js';
import type { AuthFailureTracker } from './auth-failures.js';
import { addressBucket } from './address-bucket.js';
import { ProblemError } from './problem.js';
import { newAuditRecord, type AuditRecord } from './audit-record.js';
import { problemBody } from './error-handler.js';
import { toAuditEvent, type AuditSink } from './audit-event.js';

declare module 'fastify' {
  interface FastifyRequest {
    audit: AuditRecord | undefined;
    principal: Principal | undefined;
    /** The policy snapshot this request was authenticated with; kept for its whole life. */
    policy: Policy | undefined;
  }
  interface FastifyContextConfig {
    eventName?: ApiEventName;
  }
}

export interface AuditTrailDeps {
  audit: AuditSink;
  authFailures: AuthFailureTracker;
  metrics: ServiceMetrics;
  policy: PolicyStore;
}

export function registerAuditTrail(scope: FastifyInstance, deps: AuditTrailDeps): void {
  scope.decorateRequest('audit', undefined);
  scope.decorateRequest('principal', undefined);
  scope.decorateRequest('policy', undefined);

  scope.addHook('onRequest', async (request) => {
    const route = `${request.method} ${request.routeOptions.url ?? 'unmatched'}` as RouteEventName;
    request.audit = newAuditRecord(request.routeOptions.config.eventName ?? route);
    // One snapshot per request: a policy reload mid-request never mixes two policies.
    const snapshot = deps.policy.current;
    try {
      request.principal = await snapshot.authenticator.authenticate(request.headers.authorization);
    } catch (error) {
      if (error instanceof AuthenticationError) {
        const verdict = deps.authFailures.record(addressBucket(request.ip), error.reason);
        deps.metrics.authFailures.inc({ limited: String(verdict.retryAfterSeconds !== undefined), audit: verdict.audit ? 'event' : 'summarized' });
        request.audit.authMethod = error.authMethod;
        request.audit.denyReason = verdict.kind;
        // Not the first of its kind from this address in the window: counted in the source's
        // AuthFailuresSummarized event instead of a line of its own (auth-failures.ts).
        if (!verdict.audit) request.audit = undefined;
        if (verdict.retryAfterSeconds !== undefined) {
          throw new ProblemError(429, 'TooManyAuthFailures', 'too many failed authentications from this address', verdict.retryAfterSeconds);
        }
      }
      throw error;
    }
    request.policy = snapshot.policy;
    request.audit.principalId = request.principal.id;
    request.audit.authMethod = request.principal.authMethod;
  });

  scope.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const record = request.audit;
    if (!record) return payload;
    request.audit = undefined;
    try {
      await deps.audit.write(toAuditEvent(request, reply.statusCode, record));
      deps.metrics.auditEvents.inc();
      return payload;
    } catch (error) {
      deps.metrics.auditFailures.inc();
      request.log.error({ errorName: (error as Error).name }, 'audit event could not be written: failing the request closed');
      reply.code(503).header('retry-after', '5').type('application/problem+json');
      return JSON.stringify(
        problemBody(request, { status: 503, code: 'AuditUnavailable', detail: 'the audit log cannot be written; the result was withheld' }),
      );
    }
  });
}
