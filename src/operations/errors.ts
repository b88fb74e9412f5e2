/**
 * Failures the operations raise themselves, each with the status and stable `code` the caller
 * gets (the HTTP edge turns them into RFC 9457 problems: http/problem.ts).
 */
export class ProblemError extends Error {
  override readonly name = 'ProblemError';
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
    readonly retryAfterSeconds?: number,
    /** RFC 9457 extension members (e.g. a rejected policy's `errors`); never caller input. */
    readonly extensions?: Readonly<Record<string, unknown>>,
  ) {
    super(detail);
  }
}

/** Raised for a policy denial; `reason` goes to the audit log only, never to the caller. */
export class AccessDeniedError extends ProblemError {
  constructor(readonly reason: string) {
    super(403, 'AccessDenied', 'the policy does not allow this request');
  }
}
