/**
 * Typed errors of the authz module. The HTTP layer maps them by class:
 *   AuthenticationError            -> 401 (with `WWW-Authenticate: Bearer`)
 *   AuthenticationUnavailableError -> 503 (the JWKS endpoint cannot be reached)
 *   PolicyError                    -> startup failure / rejected reload (never an HTTP response)
 *
 * No message built here ever contains a token, a token hash or a claim value: messages end up
 * in logs and audit events, and a bearer token in a log is a credential leak.
 */
import type { AuthMethod } from './principal.js';

/** Why authentication failed; stable codes for the audit log and metrics. */
export type AuthFailureReason =
  | 'missing_credentials'
  | 'unsupported_scheme'
  | 'malformed_token'
  | 'unknown_api_key'
  | 'invalid_dev_token'
  | 'jwt_not_configured'
  | 'jwt_invalid'
  | 'jwt_signature_invalid'
  | 'jwt_algorithm_not_allowed'
  | 'jwt_unknown_key'
  | 'jwt_expired'
  | 'jwt_too_old'
  | 'jwt_lifetime_too_long'
  | 'jwt_not_yet_valid'
  | 'jwt_claim_invalid'
  | 'jwt_principal_claim_missing';

export class AuthenticationError extends Error {
  override readonly name = 'AuthenticationError';
  readonly code = 'unauthenticated';

  constructor(
    readonly reason: AuthFailureReason,
    /** The method the token was routed to, if it got that far (for the audit event). */
    readonly authMethod?: AuthMethod,
    /** Internal detail (a JWT claim *name*, a jose error code); never token material. */
    readonly detail?: string,
  ) {
    super(`authentication failed: ${reason}${detail ? ` (${detail})` : ''}`);
  }
}

/** Credentials could not be checked right now (JWKS fetch failed or timed out): retryable. */
export class AuthenticationUnavailableError extends Error {
  override readonly name = 'AuthenticationUnavailableError';
  readonly code = 'authentication_unavailable';

  constructor(detail: string, options?: { cause?: unknown }) {
    super(`authentication unavailable: ${detail}`, options);
  }
}

/** One problem in a policy file, located for the operator who has to fix it. */
export interface PolicyIssue {
  /** Line and column, 1-based; absent when the problem is the file as a whole. */
  readonly line?: number;
  readonly column?: number;
  /** Dotted field path, e.g. `rules[2].operations[0]`; '' for the document root. */
  readonly field: string;
  readonly message: string;
}

export class PolicyError extends Error {
  override readonly name = 'PolicyError';

  constructor(
    readonly file: string,
    readonly issues: readonly PolicyIssue[],
  ) {
    super(`invalid policy file ${file}:\n${issues.map((issue) => `  ${formatIssue(file, issue)}`).join('\n')}`);
  }
}

/** `file:line:column: field: message`, the shape editors and CI annotations understand. */
export function formatIssue(file: string, issue: PolicyIssue): string {
  const where = issue.line === undefined ? file : `${file}:${issue.line}:${issue.column ?? 1}`;
  return `${where}: ${issue.field ? `${issue.field}: ` : ''}${issue.message}`;
}
