/**
 * Pieces every /v1 route shares: the error responses it documents (schema, media type,
 * example), and the per-route dependencies.
 */
import { Type } from 'typebox';
import type { FastifyRequest } from 'fastify';
import type { Config } from '../../config.js';
import type { AuditSink } from '../../audit/sink.js';
import type { AdminDeps } from '../../operations/admin/admin.js';
import { newCaller, type Caller, type OperationDeps } from '../../operations/operation.js';
import type { RequestTurns } from '../../admission/in-flight-limit.js';
import type { WindowLimiter } from '../../admission/shared-limits.js';
import type { RefusalSummaries } from '../../admission/refusal-summaries.js';
import type { RequestBufferBudget } from '../../admission/request-buffer-budget.js';
import { titleOf } from '../problem.js';
import { PROBLEM_MEDIA_TYPE } from '../send-problem.js';

export interface V1Deps {
  config: Config;
  /** The streaming routes write their second (outcome) event after the response has started. */
  audit: AuditSink;
  operations: OperationDeps;
  /** Per-principal in-flight cap and request turns (in-flight-limit.ts). */
  turns: RequestTurns;
  /** The request-buffer budget of the routes that buffer their body, and its refusals' audit summaries. */
  buffers: { budget: RequestBufferBudget; refusals: RefusalSummaries };
  admin: AdminDeps;
  /** The rate limit counted in Redis, for the fleet (REDIS_URL); undefined: the plugin's memory store. */
  sharedRateLimit?: WindowLimiter;
}


const RETRY_AFTER = {
  'retry-after': { type: 'integer', minimum: 0, description: 'Seconds to wait before retrying.' },
} as const;
const WWW_AUTHENTICATE = {
  'www-authenticate': { type: 'string', description: 'The bearer challenge: `Bearer realm="envelope-service"`.' },
} as const;

/**
 * A documented error response: the shared Problem schema under application/problem+json
 * (Fastify serializes the error handler's body with it, matched by that content type), with an
 * example a reader can recognise, and the headers that come with it.
 */
export function problem(status: number, description: string, code: string, detail: string, headers?: Record<string, object>, extensions?: object) {
  return {
    description,
    ...(headers ? { headers } : {}),
    content: {
      [PROBLEM_MEDIA_TYPE]: {
        schema: Type.Ref('Problem'),
        example: {
          type: `https://envelope-service.internal/problems/${code}`,
          title: titleOf(status),
          status,
          detail,
          code,
          requestId: '0b9f6a52-3d1e-4c7a-9a43-5a2f1e0c7d21',
          ...extensions,
        },
      },
    },
  };
}

/** Error statuses common to every /v1 route. */
export const COMMON_ERRORS = {
  400: problem(400, 'Malformed or invalid request (bad JSON, JSON nested too deep, bad base64, unknown field, bad context).', 'InvalidRequest', 'body must NOT have additional properties'),
  401: problem(401, 'No bearer token, or an invalid one.', 'Unauthenticated', 'missing or invalid bearer token', WWW_AUTHENTICATE),
  403: problem(403, 'The policy does not allow this request.', 'AccessDenied', 'the policy does not allow this request'),
  413: problem(
    413,
    'The body is larger than JSON_BODY_LIMIT_BYTES (JSON routes) or BODY_LIMIT_BYTES (/binary routes), or declares more than a principal may have buffered (REQUEST_BUFFER_MAX_BYTES_PER_PRINCIPAL).',
    'PayloadTooLarge',
    'the request body is larger than the limit (JSON_BODY_LIMIT_BYTES on JSON routes, BODY_LIMIT_BYTES on /binary)',
  ),
  415: problem(
    415,
    'The body is not application/json (application/octet-stream on the /binary routes).',
    'UnsupportedMediaType',
    'unsupported Content-Type: /v1/*/binary take application/octet-stream, every other route application/json',
  ),
  429: problem(
    429,
    'Rate limit (RateLimited), in-flight limit (TooManyInFlight), request-buffer share (TooMuchBuffered) or KMS call budget (KmsBudgetExceeded) of this principal exceeded, the service\'s request-buffer budget used (BufferFull), or too many failed authentications from this address (TooManyAuthFailures). The answer is held for up to REFUSAL_HOLD_MAX_MS (1 s) before it is sent, and Retry-After is what is left to wait after that.',
    'RateLimited',
    'rate limit of 60000 requests per 1 minute exceeded for this principal',
    RETRY_AFTER,
  ),
  503: problem(503, 'KMS, the audit log or the service is unavailable, or the service is overloaded (Overloaded: it sheds for memory or event-loop lag); see Retry-After. No result was produced.', 'KmsUnavailable', 'KMS is unavailable', RETRY_AFTER),
} as const;

export const KEY_ERRORS = {
  404: problem(404, 'The key does not exist.', 'KeyNotFound', 'no such key'),
  409: problem(409, 'The key is disabled or pending deletion (told only to a caller the policy allows; others get 403).', 'KeyDisabled', 'the key is disabled'),
} as const;

export const OPEN_ERRORS = {
  422: problem(422, 'The ciphertext cannot be opened: tampered, wrong context or aad, unknown format.', 'AuthenticationFailed', 'ciphertext failed authentication (tampered, or wrong aad)'),
} as const;

/** For routes outside /v1 whose only error is a bug. */
export const INTERNAL_ERROR = problem(500, 'A bug in the service (never an expected outcome).', 'InternalError', 'internal error');

export const SECURITY = [{ bearerAuth: [] }];

/**
 * The authenticated caller (authentication.ts runs before any handler), with the request's KMS
 * context (operations/operation.ts, newCaller).
 */
export function callerOf(request: FastifyRequest, deps: V1Deps): Caller {
  const { principal, policy } = request;
  if (!principal || !policy) throw new Error('route reached without authentication');
  return newCaller(deps.operations, principal, policy);
}
