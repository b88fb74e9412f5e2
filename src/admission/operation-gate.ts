/**
 * Refuses, before its body is read, a request whose principal no policy rule could allow the
 * route's operation (Policy.mayEverAllow, on the request's own policy snapshot): the same 403
 * AccessDenied problem and audit event the operation would give, without buffering a body that
 * could only be refused. A principal with a grant is judged in full by the operation as before.
 */
import type { FastifyInstance } from 'fastify';
import type { ApiEventName } from '../audit/event.js';
import type { Operation } from '../authz/principal.js';
import { AccessDeniedError } from '../operations/errors.js';

/** The operations that could allow each route's request (any one suffices). */
const OPERATIONS_OF: Partial<Record<ApiEventName, readonly Operation[]>> = {
  Encrypt: ['encrypt'],
  Decrypt: ['decrypt'],
  EncryptBatch: ['encrypt'],
  DecryptBatch: ['decrypt'],
  EncryptStream: ['encrypt'],
  DecryptStream: ['decrypt'],
  ReEncrypt: ['rewrap'],
  GenerateDataKey: ['datakey', 'datakey:plaintext'],
  UnwrapDataKey: ['datakey:unwrap'],
  GetCacheState: ['admin:read'],
  GetKmsState: ['admin:read'],
  GetPolicyState: ['admin:read'],
  EvictDataKeys: ['admin:cache'],
  ReloadPolicy: ['admin:policy'],
};

/** Registered after authentication, before anything reads the body. */
export function registerOperationGate(scope: FastifyInstance): void {
  scope.addHook('onRequest', (request, _reply, done) => {
    const { principal, policy } = request;
    const eventName = request.routeOptions.config.eventName;
    const operations = eventName === undefined ? undefined : OPERATIONS_OF[eventName as ApiEventName];
    if (!principal || !policy || !operations) return done();
    if (operations.some((operation) => policy.mayEverAllow(principal, operation))) return done();
    const reason = `no rule grants ${operations.map((operation) => `"${operation}"`).join(' or ')} to "${principal.id}"`;
    if (request.audit) request.audit.denyReason = reason;
    done(new AccessDeniedError(reason));
  });
}
