/**
 * Reading a principal's claims for policy bindings (`context.fromClaims`).
 *
 * Claims come from a verified JWT payload or from the policy file, but their *shape* is still
 * not ours: a JWT payload is parsed JSON and may carry keys like `__proto__` or `constructor`.
 * Every step therefore uses Object.hasOwn, never `in` or a bare property read, so a missing
 * claim cannot resolve to something inherited from Object.prototype.
 */

/**
 * A claim reference: either a top-level claim name (`tenant`), or an RFC 6901 JSON Pointer
 * when it starts with `/` (`/kubernetes.io/namespace`), for nested claims such as the ones a
 * Kubernetes service-account token carries. A pointer is needed because claim names
 * themselves contain dots (`kubernetes.io`).
 */
export type ClaimRef = readonly string[];

export function parseClaimRef(ref: string): ClaimRef {
  if (!ref.startsWith('/')) return [ref];
  return ref
    .slice(1)
    .split('/')
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** True when the pointer syntax is well formed (every `~` escapes 0 or 1). */
export function isValidClaimRef(ref: string): boolean {
  if (ref.length === 0) return false;
  if (!ref.startsWith('/')) return true;
  return !/~[^01]|~$/.test(ref) && ref.length > 1;
}

/**
 * The claim's value as a binding string, or undefined when it is missing or not a scalar we
 * are willing to compare. Only non-empty strings and finite numbers bind: comparing a context value with
 * `String(true)`, `String(null)` or `"[object Object]"` would make a binding match by accident.
 */
export function claimAsString(claims: Readonly<Record<string, unknown>>, ref: ClaimRef): string | undefined {
  let current: unknown = claims;
  for (const segment of ref) {
    if (current === null || typeof current !== 'object' || Array.isArray(current)) return undefined;
    if (!Object.hasOwn(current, segment)) return undefined;
    current = (current as Record<string, unknown>)[segment];
  }
  // An empty string binds nothing: a claim that is present but blank is treated as missing, so
  // a principal without a tenant can never match a context with `tenant: ""`.
  if (typeof current === 'string') return current === '' ? undefined : current;
  if (typeof current === 'number' && Number.isFinite(current)) return String(current);
  return undefined;
}
