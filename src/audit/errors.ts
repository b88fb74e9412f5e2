/**
 * Thrown by AuditLog.write() (and AuditLog.open()) when an event could not be durably handed
 * to the operating system. The HTTP layer maps it to 503 and sends no plaintext or
 * ciphertext: an operation that cannot be audited does not happen (fail closed).
 */
export class AuditWriteError extends Error {
  override readonly name = 'AuditWriteError';
  /** errno code of the underlying failure when there is one (ENOSPC, EIO, EBADF...). */
  readonly code: string;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = errnoCode(options?.cause) ?? 'AUDIT_WRITE_FAILED';
  }
}

export function errnoCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') {
    return error.code;
  }
  return undefined;
}
