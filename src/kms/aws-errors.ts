/**
 * AWS SDK v3 errors -> KmsError.
 *
 * Service errors are matched by their `name` (the KMS exception shape: `NotFoundException`, …)
 * rather than `instanceof`, because generic AWS errors such as AccessDeniedException or
 * ThrottlingException are not modelled classes of @aws-sdk/client-kms and arrive as plain
 * KMSServiceException instances carrying that name. What the name does not settle, the HTTP
 * status does (429 throttled, 5xx unavailable, 403 denied, other 4xx invalid request).
 * Errors with no HTTP response at all (refused connection, DNS, timeouts, resets) mean KMS
 * could not be reached: Unavailable, which the HTTP layer turns into 503 + Retry-After.
 *
 * Messages are built here from the operation and the exception name only. The SDK's own
 * message stays on `cause` for debugging but never reaches KmsError.message, because some
 * KMS-compatible endpoints echo request values (a CiphertextBlob, for one: local-kms's
 * ValidationException does) and the message travels on to audit events and HTTP problem bodies.
 */
import type { KmsOperation } from './provider.js';
import { KmsError, type KmsErrorCode } from './errors.js';

const BY_NAME: Readonly<Record<string, KmsErrorCode>> = {
  NotFoundException: 'KeyNotFound',
  DisabledException: 'KeyDisabled',
  KMSInvalidStateException: 'KeyUnavailableState',
  InvalidCiphertextException: 'InvalidCiphertext',
  // Real KMS: the blob was wrapped by a key other than the KeyId we named.
  IncorrectKeyException: 'InvalidCiphertext',
  AccessDeniedException: 'AccessDenied',
  // Credentials KMS does not accept: unknown access key, bad signature, expired session.
  UnrecognizedClientException: 'AccessDenied',
  InvalidSignatureException: 'AccessDenied',
  IncompleteSignature: 'AccessDenied',
  InvalidClientTokenId: 'AccessDenied',
  ExpiredTokenException: 'AccessDenied',
  ThrottlingException: 'Throttled',
  LimitExceededException: 'Throttled',
  TooManyRequestsException: 'Throttled',
  KMSInternalException: 'Unavailable',
  DependencyTimeoutException: 'Unavailable',
  // "The specified KMS key was not available. You can retry the request." (custom key stores)
  KeyUnavailableException: 'Unavailable',
  InternalFailure: 'Unavailable',
  InternalFailureException: 'Unavailable',
  ServiceUnavailable: 'Unavailable',
  ServiceUnavailableException: 'Unavailable',
  // No credentials could be loaded at all: an operations problem, not the caller's.
  CredentialsProviderError: 'Unavailable',
  TimeoutError: 'Unavailable',
  RequestTimeout: 'Unavailable',
  RequestTimeoutException: 'Unavailable',
  AbortError: 'Unavailable',
  ValidationException: 'InvalidRequest',
  SerializationException: 'InvalidRequest',
  MissingParameterException: 'InvalidRequest',
  InvalidKeyUsageException: 'InvalidRequest',
  InvalidGrantTokenException: 'InvalidRequest',
  InvalidArnException: 'InvalidRequest',
  InvalidAliasNameException: 'InvalidRequest',
  InvalidMarkerException: 'InvalidRequest',
  UnsupportedOperationException: 'InvalidRequest',
};

/** Node socket/DNS error codes meaning "no answer from KMS". */
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'UND_ERR_SOCKET',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

const DESCRIPTION: Readonly<Record<KmsErrorCode, string>> = {
  KeyNotFound: 'the key, alias or ARN does not exist',
  KeyDisabled: 'the key is disabled',
  KeyUnavailableState: 'the key is in a state that refuses use (e.g. pending deletion)',
  InvalidCiphertext: 'the wrapped key cannot be unwrapped with this key and encryption context',
  AccessDenied: 'KMS denied the request',
  Throttled: 'KMS is throttling requests',
  Unavailable: 'KMS could not be reached or failed',
  InvalidRequest: 'KMS rejected the request as invalid',
};

interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  $fault?: unknown;
  $metadata?: { httpStatusCode?: unknown; requestId?: unknown };
  $response?: { statusCode?: unknown };
}

export function translateAwsError(error: unknown, operation: KmsOperation | string): KmsError {
  if (error instanceof KmsError) return error;
  const shape = (typeof error === 'object' && error !== null ? error : {}) as SdkErrorShape;
  const name = typeof shape.name === 'string' ? shape.name : 'Error';
  const requestId = typeof shape.$metadata?.requestId === 'string' ? shape.$metadata.requestId : undefined;
  const status = httpStatusOf(shape);
  const code = classify(name, shape, status);
  const statusText = status === undefined ? '' : `, HTTP ${status}`;
  return new KmsError(code, `KMS ${operation} failed (${name}${statusText}): ${DESCRIPTION[code]}`, requestId, {
    cause: error,
  });
}

function classify(name: string, shape: SdkErrorShape, status: number | undefined): KmsErrorCode {
  const byName = BY_NAME[name];
  if (byName) return byName;
  if (typeof shape.code === 'string' && NETWORK_CODES.has(shape.code)) return 'Unavailable';
  if (status === 429) return 'Throttled';
  if (status !== undefined && status >= 500) return 'Unavailable';
  if (status === 401 || status === 403) return 'AccessDenied';
  if (status !== undefined && status >= 400) return 'InvalidRequest';
  if (shape.$fault === 'server') return 'Unavailable';
  // No HTTP status and no recognised name: the request never got an answer (socket errors
  // surface with varying names/codes across Node versions), so KMS was unreachable.
  return 'Unavailable';
}

function httpStatusOf(shape: SdkErrorShape): number | undefined {
  const status = shape.$metadata?.httpStatusCode ?? shape.$response?.statusCode;
  return typeof status === 'number' ? status : undefined;
}
