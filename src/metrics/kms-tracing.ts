/**
 * A KeyProvider decorator that puts every KMS call in a span of its own (`kms.<Operation>`),
 * with the request id KMS answered (`aws.request_id`, CloudTrail's `requestID`): the join from
 * a trace to CloudTrail, as kmsRequestIds is the audit event's. Innermost of the decorators, so
 * the span times the call itself, not the breaker's refusals. The AWS SDK's own span (its
 * instrumentation, when tracing is on) is a child of this one.
 */
import { decorateProvider } from '../kms/decorate.js';
import { isKmsError } from '../kms/errors.js';
import type { KeyProvider } from '../kms/provider.js';
import { ATTR, inSpan } from '../telemetry/spans.js';

export function traceProvider(provider: KeyProvider): KeyProvider {
  return decorateProvider(provider, (operation, call) =>
    inSpan(`kms.${operation}`, { [ATTR.kmsOperation]: operation, 'rpc.service': 'KMS' }, async (span) => {
      try {
        const result = await call();
        const requestId = (result as { requestId?: unknown }).requestId;
        if (typeof requestId === 'string') span.setAttribute(ATTR.kmsRequestId, requestId);
        span.setAttribute(ATTR.kmsOutcome, 'ok');
        return result;
      } catch (error) {
        if (isKmsError(error)) {
          span.setAttribute(ATTR.kmsOutcome, error.code);
          if (error.requestId) span.setAttribute(ATTR.kmsRequestId, error.requestId);
        }
        throw error;
      }
    }),
  );
}
