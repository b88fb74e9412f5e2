/**
 * JWT bearer tokens (typically Kubernetes service-account tokens), verified with jose against
 * a JWKS from a file or a URL.
 *
 * Defences, each one also a test in test/authz/jwt.test.ts:
 * - algorithms: an explicit allow-list of asymmetric algorithms (the policy schema refuses HS*
 *   and none), passed to jwtVerify so a token's own `alg` header is never trusted;
 * - issuer and audience always checked; `exp` is required, `exp`/`nbf` checked with a small
 *   clock tolerance (default 5 s);
 * - `iat` is required, and both the token's age (now - iat) and its lifetime (exp - iat) must
 *   be within maxTokenAgeSeconds (default 24 h): a token minted to live for years is a
 *   credential nobody can revoke, so it is refused even while fresh;
 * - the principal claim must be a non-empty string;
 * - JWKS files may hold public asymmetric keys only (no `oct`, no private parts): a symmetric
 *   or private key in a "public" key file is a leak waiting to happen.
 */
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from 'jose';
import { claimAsString, parseClaimRef, type ClaimRef } from './claims.js';
import { AuthenticationError, AuthenticationUnavailableError, type AuthFailureReason } from './errors.js';
import { DEFAULT_MAX_TOKEN_AGE_SECONDS } from './policy-schema.js';
import type { Principal } from './principal.js';

export interface JwtVerifierOptions {
  readonly issuer: string;
  readonly audience: string | readonly string[];
  readonly algorithms: readonly string[];
  /** Default `sub`. */
  readonly principalClaim?: string;
  /** The claim reference (name or /json/pointer) whose value is the token's tenant; none by default. */
  readonly tenantClaim?: string;
  /** Default 5. */
  readonly clockToleranceSeconds?: number;
  /** Default DEFAULT_MAX_TOKEN_AGE_SECONDS. */
  readonly maxTokenAgeSeconds?: number;
  /** Either a parsed JWKS (from a file) or a URL to fetch it from. */
  readonly jwks: { readonly kind: 'keys'; readonly keys: JSONWebKeySet } | { readonly kind: 'url'; readonly url: URL };
}

// Remote JWKS: keys are cached for 10 minutes; an unknown `kid` triggers a refetch at most
// every 30 s (jose's cooldown), so a flood of forged kids cannot hammer the issuer.
const REMOTE_JWKS_OPTIONS = { cacheMaxAge: 10 * 60_000, cooldownDuration: 30_000, timeoutDuration: 5_000 };

export class JwtVerifier {
  readonly #keys: JWTVerifyGetKey;
  readonly #options: JwtVerifierOptions;
  readonly #principalClaim: string;
  readonly #tenantClaim: ClaimRef | undefined;

  constructor(options: JwtVerifierOptions) {
    this.#options = options;
    this.#principalClaim = options.principalClaim ?? 'sub';
    this.#tenantClaim = options.tenantClaim === undefined ? undefined : parseClaimRef(options.tenantClaim);
    this.#keys =
      options.jwks.kind === 'url'
        ? createRemoteJWKSet(options.jwks.url, REMOTE_JWKS_OPTIONS)
        : createLocalJWKSet(options.jwks.keys);
  }

  async verify(token: string): Promise<Principal> {
    let payload: Record<string, unknown>;
    const clockTolerance = this.#options.clockToleranceSeconds ?? 5;
    const maxTokenAge = this.#options.maxTokenAgeSeconds ?? DEFAULT_MAX_TOKEN_AGE_SECONDS;
    try {
      ({ payload } = await jwtVerify(token, this.#keys, {
        issuer: this.#options.issuer,
        audience: [...(typeof this.#options.audience === 'string' ? [this.#options.audience] : this.#options.audience)],
        algorithms: [...this.#options.algorithms],
        clockTolerance,
        // jose then also requires `iat` and refuses one in the future.
        maxTokenAge,
        requiredClaims: ['exp', 'iat', this.#principalClaim],
      }));
    } catch (error) {
      throw mapJoseError(error);
    }
    // jose bounds the age; the lifetime the issuer granted is ours to bound. Both are numbers here.
    if ((payload.exp as number) - (payload.iat as number) > maxTokenAge + clockTolerance) {
      throw new AuthenticationError('jwt_lifetime_too_long', 'jwt', 'exp - iat');
    }
    const id = Object.hasOwn(payload, this.#principalClaim) ? payload[this.#principalClaim] : undefined;
    if (typeof id !== 'string' || id === '') {
      throw new AuthenticationError('jwt_principal_claim_missing', 'jwt', this.#principalClaim);
    }
    // A token without the claim has no tenant of its own (a rule may still give it one).
    const tenant = this.#tenantClaim === undefined ? undefined : claimAsString(payload, this.#tenantClaim);
    return Object.freeze({ id, authMethod: 'jwt' as const, claims: Object.freeze(payload), ...(tenant === undefined ? {} : { tenant }) });
  }
}

const REASONS: Readonly<Record<string, AuthFailureReason>> = {
  ERR_JWT_EXPIRED: 'jwt_expired',
  ERR_JWS_SIGNATURE_VERIFICATION_FAILED: 'jwt_signature_invalid',
  ERR_JOSE_ALG_NOT_ALLOWED: 'jwt_algorithm_not_allowed',
  ERR_JOSE_NOT_SUPPORTED: 'jwt_algorithm_not_allowed',
  ERR_JWKS_NO_MATCHING_KEY: 'jwt_unknown_key',
  ERR_JWKS_MULTIPLE_MATCHING_KEYS: 'jwt_unknown_key',
  ERR_JWS_INVALID: 'jwt_invalid',
  ERR_JWT_INVALID: 'jwt_invalid',
};

/**
 * jose error -> our error. Token faults are 401s; failing to *get* the keys (timeout, the JWKS
 * URL answering non-200 or garbage, network errors) is the server's problem and retryable, so
 * it becomes AuthenticationUnavailableError (503). Both fail closed.
 */
function mapJoseError(error: unknown): Error {
  if (error instanceof errors.JWTExpired && error.claim === 'iat') {
    return new AuthenticationError('jwt_too_old', 'jwt', 'iat');
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    const reason = error.claim === 'nbf' ? 'jwt_not_yet_valid' : 'jwt_claim_invalid';
    // `claim` and `reason` are names from a fixed set ("iss", "mismatch"), not token content.
    return new AuthenticationError(reason, 'jwt', `${error.claim}: ${error.reason}`);
  }
  if (error instanceof errors.JOSEError) {
    if (Object.hasOwn(REASONS, error.code)) {
      return new AuthenticationError(REASONS[error.code] ?? 'jwt_invalid', 'jwt', error.code);
    }
    return new AuthenticationUnavailableError(`JWKS: ${error.code}`, { cause: error });
  }
  return new AuthenticationUnavailableError('JWKS could not be fetched', { cause: error });
}
