/**
 * Provider-neutral KMS failures. Both providers translate what they see into these codes, so
 * the HTTP layer maps one set of codes to statuses whichever provider runs.
 */
export type KmsErrorCode =
  /** The key, alias or ARN does not exist. */
  | 'KeyNotFound'
  /** The key exists but is disabled. */
  | 'KeyDisabled'
  /** The key is pending deletion (or otherwise in a state that refuses use). */
  | 'KeyUnavailableState'
  /** The wrapped key could not be unwrapped: wrong key, wrong context, or corrupt blob. */
  | 'InvalidCiphertext'
  /** KMS refused the caller (IAM / key policy). */
  | 'AccessDenied'
  /** KMS asked us to slow down. */
  | 'Throttled'
  /** KMS could not be reached, timed out, or failed internally. */
  | 'Unavailable'
  /** The request to KMS was invalid (e.g. a malformed key id). */
  | 'InvalidRequest';

export class KmsError extends Error {
  override readonly name = 'KmsError';
  constructor(
    readonly code: KmsErrorCode,
    message: string,
    readonly requestId?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isKmsError(error: unknown): error is KmsError {
  return error instanceof KmsError;
}
