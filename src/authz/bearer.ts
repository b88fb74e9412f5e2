/**
 * Reading `Authorization: Bearer <token>` (RFC 6750 §2.1) and deciding which verifier a token
 * goes to. Nothing here looks at whether the token is *valid*.
 */
import { AuthenticationError } from './errors.js';

// Node caps the whole header block at 16 KiB by default; this cap keeps hashing and regex work
// bounded even if that limit is raised.
const MAX_HEADER_LENGTH = 8192;

// Scheme is case-insensitive (RFC 9110 §11.1); token is RFC 6750's b64token.
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** The bearer token, or an AuthenticationError saying why there is none. */
export function bearerToken(authorizationHeader: string | undefined): string {
  if (authorizationHeader === undefined || authorizationHeader.trim() === '') {
    throw new AuthenticationError('missing_credentials');
  }
  if (authorizationHeader.length > MAX_HEADER_LENGTH) throw new AuthenticationError('malformed_token');
  const match = BEARER.exec(authorizationHeader);
  if (match?.[1] === undefined) {
    // Distinguish "Basic ..." from "Bearer <garbage>" for the audit log only.
    throw new AuthenticationError(/^Bearer(\s|$)/i.test(authorizationHeader) ? 'malformed_token' : 'unsupported_scheme');
  }
  return match[1];
}

const BASE64URL_SEGMENT = /^[A-Za-z0-9_-]+$/;

/**
 * JWT or API key? A token is treated as a JWT when it has exactly three dot-separated parts
 * and the first decodes (base64url) to a JSON object with a string `alg`; everything else is
 * an API key. The signature part may be empty so that `alg: none` tokens are still routed to
 * (and refused by) the JWT verifier, which records a precise reason. API keys should therefore
 * not contain dots; random hex or base64url keys never look like a JWT header.
 */
export function looksLikeJwt(token: string): boolean {
  const parts = token.split('.');
  if (parts.length !== 3) return false;
  const [header, payload] = parts;
  if (header === undefined || payload === undefined) return false;
  if (!BASE64URL_SEGMENT.test(header) || !BASE64URL_SEGMENT.test(payload)) return false;
  try {
    const decoded: unknown = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
    return (
      decoded !== null &&
      typeof decoded === 'object' &&
      !Array.isArray(decoded) &&
      Object.hasOwn(decoded, 'alg') &&
      typeof (decoded as { alg: unknown }).alg === 'string'
    );
  } catch {
    return false;
  }
}
