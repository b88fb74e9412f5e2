/**
 * Error mapping: every failure becomes an RFC 9457 problem with a stable `code`. User errors
 * map to 4xx, dependency failures to 503 with Retry-After, and only bugs to 500. Details are
 * written here from codes, never copied from upstream messages, so no plaintext, key material
 * or token can reach a response body.
 */
import { AuthenticationError, AuthenticationUnavailableError } from '../authz/errors.js';
import { EnvelopeError } from '../format/errors.js';
import { KmsBudgetExceededError } from '../admission/kms-budget.js';
import { CircuitOpenError } from '../kms/circuit-breaker.js';
import { isKmsError } from '../kms/errors.js';
import { AuditWriteError } from '../audit/errors.js';
import { ProblemError } from '../operations/errors.js';

export { ProblemError };

export interface ProblemDescription {
  status: number;
  code: string;
  detail: string;
  retryAfterSeconds?: number;
  /** Extra headers (WWW-Authenticate on 401). */
  headers?: Record<string, string>;
  /** Extension members of the body (the route documents them). */
  extensions?: Readonly<Record<string, unknown>>;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function titleOf(status: number): string {
  return TITLES[status] ?? 'Error';
}

/** Translates any thrown value into the problem the caller sees. */
export function describeError(error: unknown): ProblemDescription {
  if (error instanceof ProblemError) {
    return {
      status: error.status,
      code: error.code,
      detail: error.detail,
      retryAfterSeconds: error.retryAfterSeconds,
      ...(error.extensions === undefined ? {} : { extensions: error.extensions }),
    };
  }
  if (error instanceof EnvelopeError) return { status: 422, code: error.code, detail: error.message };
  if (error instanceof AuthenticationError) {
    return {
      status: 401,
      code: 'Unauthenticated',
      detail: 'missing or invalid bearer token',
      headers: { 'www-authenticate': 'Bearer realm="envelope-service"' },
    };
  }
  if (error instanceof AuthenticationUnavailableError) {
    return { status: 503, code: 'AuthenticationUnavailable', detail: 'credentials cannot be verified right now', retryAfterSeconds: 5 };
  }
  if (error instanceof AuditWriteError) {
    return { status: 503, code: 'AuditUnavailable', detail: 'the audit log cannot be written; nothing was processed', retryAfterSeconds: 5 };
  }
  if (error instanceof KmsBudgetExceededError) {
    // This principal's own KMS budget, not the service's state: other principals are served.
    return {
      status: 429,
      code: 'KmsBudgetExceeded',
      detail: "this principal's KMS call budget is spent (KMS_BUDGET_PER_SECOND, KMS_BUDGET_BURST); cached keys keep working",
      retryAfterSeconds: Math.max(1, Math.ceil(error.retryAfterMs / 1000)),
    };
  }
  if (error instanceof CircuitOpenError) {
    // Not attempted: the breaker is open. Retry-After is the cooldown left, so well-behaved
    // callers come back when the next probe can run (never 0: at least one second).
    return {
      status: 503,
      code: 'KmsUnavailable',
      detail: 'KMS is unavailable (failing fast after repeated KMS failures)',
      retryAfterSeconds: Math.max(1, Math.ceil(error.retryAfterMs / 1000)),
    };
  }
  if (isKmsError(error)) return describeKmsError(error.code);
  return describeFrameworkError(error);
}

function describeKmsError(code: string): ProblemDescription {
  switch (code) {
    case 'KeyNotFound':
      return { status: 404, code: 'KeyNotFound', detail: 'no such key' };
    case 'KeyDisabled':
      return { status: 409, code: 'KeyDisabled', detail: 'the key is disabled' };
    case 'KeyUnavailableState':
      return { status: 409, code: 'KeyPendingDeletion', detail: 'the key is pending deletion or otherwise unusable' };
    case 'InvalidCiphertext':
      return { status: 422, code: 'DataKeyUnwrapFailed', detail: 'KMS could not unwrap the data key (wrong key or context, or corrupt)' };
    case 'AccessDenied':
      return { status: 403, code: 'KmsAccessDenied', detail: 'KMS refused this service access to the key' };
    case 'Throttled':
      return { status: 503, code: 'KmsThrottled', detail: 'KMS is throttling requests', retryAfterSeconds: 1 };
    case 'InvalidRequest':
      return { status: 400, code: 'InvalidKeyId', detail: 'the key id is not valid' };
    default:
      return { status: 503, code: 'KmsUnavailable', detail: 'KMS is unavailable', retryAfterSeconds: 5 };
  }
}

interface FrameworkError {
  code?: string;
  statusCode?: number;
  validation?: unknown;
  validationContext?: string;
  message?: string;
}

/** Fastify's own errors (validation, body parsing, limits) and anything unexpected. */
function describeFrameworkError(error: unknown): ProblemDescription {
  const e = (error ?? {}) as FrameworkError;
  if (e.validation) {
    // Ajv messages name the field and the rule, never the value.
    return { status: 400, code: 'InvalidRequest', detail: e.message ?? 'the request is invalid' };
  }
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        status: 413,
        code: 'PayloadTooLarge',
        detail: 'the request body is larger than the limit (JSON_BODY_LIMIT_BYTES on JSON routes, BODY_LIMIT_BYTES on /binary)',
      };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        status: 415,
        code: 'UnsupportedMediaType',
        detail: 'unsupported Content-Type: /v1/*/binary take application/octet-stream, every other route application/json',
      };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, code: 'InvalidRequest', detail: 'the request body is empty' };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { status: 400, code: 'InvalidRequest', detail: 'the Content-Length header does not match the body' };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      // Fastify's parser gives one error for both causes (it drops secure-json-parse's message),
      // so the detail names both: broken JSON, or the prototype-poisoning guard.
      return {
        status: 400,
        code: 'MalformedJson',
        detail: 'the request body is not valid JSON, or it holds a key named "__proto__" (refused everywhere)',
      };
    case 'FST_ERR_CTP_INVALID_TYPE':
      return { status: 400, code: 'MalformedJson', detail: 'the request body is not valid JSON' };
    default:
      break;
  }
  if (e.statusCode === 429) return { status: 429, code: 'RateLimited', detail: 'too many requests for this principal' };
  if (e.statusCode === 400 && e instanceof SyntaxError) {
    return { status: 400, code: 'MalformedJson', detail: 'the request body is not valid JSON' };
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return { status: e.statusCode, code: 'BadRequest', detail: titleOf(e.statusCode) };
  }
  if (e.statusCode === 503) return { status: 503, code: 'Unavailable', detail: 'the service is overloaded', retryAfterSeconds: 5 };
  return { status: 500, code: 'InternalError', detail: 'internal error' };
}
