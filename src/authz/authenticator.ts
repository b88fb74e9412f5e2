/**
 * Authentication: `Authorization` header -> Principal, or AuthenticationError.
 *
 * Bearer tokens only. With a policy file, a token that looks like a JWT (see looksLikeJwt)
 * goes to the JWT verifier, anything else to the API-key table. Without one (dev mode), the
 * single dev token is the only credential.
 */
import { ApiKeyVerifier, devTokenVerifier, type ApiKeyEntry } from './api-keys.js';
import { bearerToken, looksLikeJwt } from './bearer.js';
import { AuthenticationError } from './errors.js';
import { JwtVerifier, type JwtVerifierOptions } from './jwt.js';
import { DEV_PRINCIPAL_ID } from './policy.js';
import type { Principal } from './principal.js';

export interface Authenticator {
  /**
   * Resolves to the caller's Principal. Rejects with AuthenticationError (-> 401) for missing,
   * malformed or invalid credentials, or AuthenticationUnavailableError (-> 503) when a JWKS
   * could not be fetched. Error messages never contain the token.
   */
  authenticate(authorizationHeader: string | undefined): Promise<Principal>;
}

export interface AuthenticatorOptions {
  readonly apiKeys: readonly ApiKeyEntry[];
  readonly jwt?: JwtVerifierOptions;
}

export function createAuthenticator(options: AuthenticatorOptions): Authenticator {
  const apiKeys = new ApiKeyVerifier(options.apiKeys);
  const jwt = options.jwt === undefined ? undefined : new JwtVerifier(options.jwt);
  return {
    async authenticate(authorizationHeader) {
      const token = bearerToken(authorizationHeader);
      if (looksLikeJwt(token)) {
        if (jwt === undefined) throw new AuthenticationError('jwt_not_configured', 'jwt');
        return jwt.verify(token);
      }
      return apiKeys.verify(token);
    },
  };
}

const DEV_PRINCIPAL: Principal = Object.freeze({ id: DEV_PRINCIPAL_ID, authMethod: 'dev-token', claims: Object.freeze({}) });

/** Dev mode: one shared token, principal `dev`; pair it with devPolicy(). */
export function createDevAuthenticator(devToken: string): Authenticator {
  // A token outside RFC 6750's b64token alphabet could never be presented in a Bearer header:
  // fail at start with a clear message instead of 401s on every request.
  if (!/^[A-Za-z0-9\-._~+/]+=*$/.test(devToken)) {
    throw new Error('DEV_TOKEN must be non-empty and use only the characters A-Z a-z 0-9 - . _ ~ + / (and trailing =)');
  }
  const matches = devTokenVerifier(devToken);
  return {
    async authenticate(authorizationHeader) {
      const token = bearerToken(authorizationHeader);
      if (!matches(token)) throw new AuthenticationError('invalid_dev_token', 'dev-token');
      return DEV_PRINCIPAL;
    },
  };
}
