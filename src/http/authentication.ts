/**
 * Authentication of every /v1 request (onRequest, before the rate limits and before the body
 * is read): the bearer token against the current policy snapshot, kept for the whole request.
 * Failed authentications are counted per source address (auth-failures.ts): over the limit,
 * 429 + Retry-After; beyond the first of each kind in a window, no audit event of their own.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Span } from '@opentelemetry/api';
import type { Policy } from '../authz/policy.js';
import type { Principal } from '../authz/principal.js';
import type { PolicyStore } from '../authz/store.js';
import { AuthenticationError } from '../authz/errors.js';
import type { ServiceMetrics } from '../metrics/metrics.js';
import { addressBucket } from '../admission/address-bucket.js';
import type { AuthFailureTracker } from '../admission/auth-failures.js';
import type { WindowLimiter } from '../admission/shared-limits.js';
import { ProblemError } from './problem.js';
import { ATTR, inSpan } from '../telemetry/spans.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | undefined;
    /** The policy snapshot this request was authenticated with; kept for its whole life. */
    policy: Policy | undefined;
  }
}

export interface AuthenticationDeps {
  policy: PolicyStore;
  authFailures: AuthFailureTracker;
  /** Failed authentications counted fleet-wide in Redis (REDIS_URL); undefined: per process only. */
  sharedAuthFailures?: WindowLimiter;
  metrics: ServiceMetrics;
}

export function registerAuthentication(scope: FastifyInstance, deps: AuthenticationDeps): void {
  scope.decorateRequest('principal', undefined);
  scope.decorateRequest('policy', undefined);

  scope.addHook('onRequest', (request) => inSpan('authenticate', {}, (span) => authenticate(request, span)));

  async function authenticate(request: FastifyRequest, span: Span): Promise<void> {
    // One snapshot per request: a policy reload mid-request never mixes two policies.
    const snapshot = deps.policy.current;
    try {
      request.principal = await snapshot.authenticator.authenticate(request.headers.authorization);
      // Who, never the credential (nor a hash of it). Built only for a span that records it.
      if (span.isRecording()) span.setAttributes({ [ATTR.authMethod]: request.principal.authMethod, [ATTR.principalId]: request.principal.id, [ATTR.authOutcome]: 'authenticated' });
    } catch (error) {
      if (error instanceof AuthenticationError) {
        const source = addressBucket(request.ip);
        // With REDIS_URL the failures are also counted for the fleet: a lockout earned on one
        // replica holds on every other (admission/shared-limits.ts).
        const fleet = await deps.sharedAuthFailures?.consume(source);
        const verdict = deps.authFailures.record(source, error.reason, fleet && !fleet.allowed ? fleet.msBeforeNext : undefined);
        span.setAttributes({ [ATTR.authMethod]: error.authMethod, [ATTR.authOutcome]: verdict.kind });
        deps.metrics.authFailures.inc({ limited: String(verdict.retryAfterSeconds !== undefined), audit: verdict.audit ? 'event' : 'summarized' });
        if (request.audit) {
          request.audit.authMethod = error.authMethod;
          request.audit.denyReason = verdict.kind;
        }
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
  }
}
