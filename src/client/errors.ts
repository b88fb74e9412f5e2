/**
 * What the client throws. A service answer that is not a success is an EnvelopeProblem (the
 * RFC 9457 problem the service sent: its stable `code`, `status`, `requestId`); a stream the
 * service cut after its 200 is a StreamCutError; anything local (a ciphertext that fails to
 * open, a truncated file) is the format's own EnvelopeError (src/format/errors.ts).
 */
import type { components } from './api.js';

export type ProblemBody = components['schemas']['Problem'];

export class EnvelopeProblem extends Error {
  override readonly name = 'EnvelopeProblem';
  readonly status: number;
  readonly code: string;
  /** The service's request id (its audit event's requestID); empty when the answer carried none. */
  readonly requestId: string;
  readonly detail: string;
  /** Seconds the service asked to wait (429, 503), when it said. */
  readonly retryAfterSeconds: number | undefined;
  /** `PolicyInvalid` only: the policy file's errors. */
  readonly errors: ProblemBody['errors'];

  constructor(
    /** The operation, e.g. `POST /v1/datakey`. */
    readonly operation: string,
    status: number,
    body: Partial<ProblemBody> | undefined,
    retryAfterSeconds: number | undefined,
    requestId?: string,
  ) {
    const code = typeof body?.code === 'string' ? body.code : `Http${status}`;
    const detail = typeof body?.detail === 'string' ? body.detail : `the service answered ${status}`;
    super(`${operation}: ${status} ${code}: ${detail}`);
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.requestId = typeof body?.requestId === 'string' ? body.requestId : (requestId ?? '');
    this.retryAfterSeconds = retryAfterSeconds;
    this.errors = body?.errors;
  }
}

/**
 * The service ended a stream after its 200 without the final chunk: a later segment failed,
 * a limit or the idle timeout was hit, or the audit log failed (README, "Streams"). What was
 * already read was verified, but the stream is incomplete and must be discarded.
 */
export class StreamCutError extends Error {
  override readonly name = 'StreamCutError';
  constructor(
    readonly operation: string,
    readonly bytesReceived: number,
    options?: { cause?: unknown },
  ) {
    super(`${operation}: the service cut the stream short after ${bytesReceived} bytes (truncated; its audit log has the reason)`, options);
  }
}

/** A refusal the client can explain better than the service's deliberately terse 403. */
export class GrantMissingError extends EnvelopeProblem {
  constructor(problem: EnvelopeProblem, readonly grant: string, what: string) {
    super(problem.operation, problem.status, { code: problem.code, detail: `${problem.detail}; ${what} needs the "${grant}" grant on this key and context`, requestId: problem.requestId }, undefined);
  }
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date), or undefined. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000));
}
