/**
 * The command's exit codes, for scripts (README, "The envelope command"), and the one line
 * that explains a failure. Every failure names its reason: the service's problem code, the
 * segment that failed, a truncation, a wrong key.
 */
import { EnvelopeError } from '../../format/errors.js';
import { SegmentAuthenticationError } from '../../format/stream-crypto.js';
import { EnvelopeProblem, StreamCutError } from '../errors.js';
import { ClientTimeoutError } from '../transport.js';

export const EXIT = {
  ok: 0,
  /** Anything else: a file that cannot be read or written, an unexpected error. */
  failure: 1,
  /** Bad arguments, or no token or URL. */
  usage: 2,
  /** 401: no token, or one the service does not accept. */
  unauthenticated: 3,
  /** 403: the policy does not allow it (the message names the grant the mode needs). */
  forbidden: 4,
  /** 404 or 409: the key does not exist, or is disabled or pending deletion. */
  keyUnusable: 5,
  /** The ciphertext cannot be opened: tampered, truncated, wrong key or context or aad, not a ciphertext (422 or found here). */
  integrity: 6,
  /** The service is unavailable, overloaded or limiting (429, 503), unreachable, or timed out: try again later. */
  unavailable: 7,
  /** Any other refusal of the service (400, 413...): the message has its code. */
  refused: 8,
} as const;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** An error that already says everything, with its exit code. */
export class CommandError extends Error {
  override readonly name = 'CommandError';
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

export function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError) return EXIT.usage;
  if (error instanceof CommandError) return error.exitCode;
  if (error instanceof EnvelopeProblem) {
    if (error.status === 401) return EXIT.unauthenticated;
    if (error.status === 403) return EXIT.forbidden;
    if (error.status === 404 || error.status === 409) return EXIT.keyUnusable;
    if (error.status === 422) return EXIT.integrity;
    if (error.status === 429 || error.status === 503) return EXIT.unavailable;
    return EXIT.refused;
  }
  if (error instanceof EnvelopeError || error instanceof StreamCutError) return EXIT.integrity;
  if (error instanceof ClientTimeoutError || isNetworkError(error)) return EXIT.unavailable;
  return EXIT.failure;
}

/** One line, for stderr: what failed and why, never key material. */
export function describeFailure(error: unknown): string {
  if (error instanceof SegmentAuthenticationError) return `bad segment ${error.segment}: ${reasonOf(error)}`;
  if (error instanceof EnvelopeError) {
    if (error.code === 'KeyCommitmentMismatch') return 'wrong key: the data key does not match the commitment in the header (a forged or altered key block)';
    return `${error.code}: ${error.message}`;
  }
  if (error instanceof EnvelopeProblem) {
    const reason = error.code === 'DataKeyUnwrapFailed' ? ' (wrong key: KMS cannot unwrap it under this key and context)' : '';
    return `${error.message}${reason}${error.requestId ? ` [request ${error.requestId}]` : ''}`;
  }
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code ? `${error.message} (${code})` : error.message;
  }
  return String(error);
}

function reasonOf(error: SegmentAuthenticationError): string {
  return /truncated/.test(error.message) ? 'truncated (the stream ends before its last segment)' : 'failed authentication (tampered, reordered, wrong aad)';
}

function isNetworkError(error: unknown): boolean {
  const code = (error as { code?: unknown; cause?: { code?: unknown } })?.code ?? (error as { cause?: { code?: unknown } })?.cause?.code;
  return typeof code === 'string' && ['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT'].includes(code);
}
