/**
 * Why a ciphertext could not be opened. Every one of these is the caller's problem (HTTP 422),
 * and no message ever contains key material or payload bytes.
 */
export type EnvelopeErrorCode =
  /** Not our prefix, or a version/algorithm this build does not know. */
  | 'UnsupportedFormat'
  /** The bytes do not parse: bad base64url, truncated, a length out of bounds. */
  | 'MalformedCiphertext'
  /** The data key does not match the commitment stored in the header. */
  | 'KeyCommitmentMismatch'
  /** AES-GCM authentication failed: tampered header, body or tag, or wrong aad. */
  | 'AuthenticationFailed'
  /** The caller's `context` differs from the one stored in the ciphertext. */
  | 'ContextMismatch';

export class EnvelopeError extends Error {
  override readonly name = 'EnvelopeError';
  constructor(
    readonly code: EnvelopeErrorCode,
    message: string,
  ) {
    super(message);
  }
}
