/**
 * Pieces every /v1 route shares: the error responses it documents, and the per-route
 * dependencies.
 */
import { Type } from 'typebox';
import type { Config } from '../../config.js';
import type { PolicyStore } from '../../authz/store.js';
import type { KeyDirectory } from '../../envelope/key-directory.js';
import type { FastifyRequest } from 'fastify';
import type { Caller, OperationDeps } from '../operations.js';

export interface V1Deps {
  config: Config;
  policy: PolicyStore;
  operations: OperationDeps;
  directory: KeyDirectory;
}

const problem = (description: string) => Type.Ref('Problem', { description });

/** Error statuses common to every /v1 route. */
export const COMMON_ERRORS = {
  400: problem('Malformed or invalid request (bad JSON, bad base64, unknown field, bad context).'),
  401: problem('No bearer token, or an invalid one.'),
  403: problem('The policy does not allow this request.'),
  413: problem('The body is larger than BODY_LIMIT_BYTES.'),
  415: problem('The body is not application/json.'),
  429: problem('Rate limit for this principal exceeded; see Retry-After.'),
  503: problem('KMS, the audit log or the service is unavailable; see Retry-After. No result was produced.'),
} as const;

export const KEY_ERRORS = {
  404: problem('The key does not exist.'),
  409: problem('The key is disabled or pending deletion.'),
} as const;

export const OPEN_ERRORS = {
  422: problem('The ciphertext cannot be opened: tampered, wrong context or aad, unknown format.'),
} as const;

export const SECURITY = [{ bearerAuth: [] }];

/** The authenticated caller (set by the audit trail's onRequest hook before any handler). */
export function callerOf(request: FastifyRequest): Caller {
  const { principal, policy } = request;
  if (!principal || !policy) throw new Error('route reached without authentication');
  return { principal, policy };
}
