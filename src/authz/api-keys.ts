/**
 * Static API keys: the policy file holds SHA-256 hashes, never tokens.
 *
 * Why hashing first: every presented token becomes a 32-byte digest, so timingSafeEqual always
 * compares equal-length buffers (it throws otherwise) and the comparison time does not depend
 * on the token's length or content. A plain SHA-256 (not a slow password hash) is right here:
 * API keys are high-entropy random strings, so there is nothing to brute-force offline.
 *
 * Why compare against every key: stopping at the first match would make a valid token for the
 * first key measurably faster than one for the last. The loop always runs to the end; the only
 * data-dependent work is remembering the match, which is unavoidable and tiny.
 */
import { hash, timingSafeEqual } from 'node:crypto';
import { AuthenticationError } from './errors.js';
import type { Principal } from './principal.js';

export interface ApiKeyEntry {
  readonly name: string;
  /** 64 hex characters (case-insensitive). */
  readonly sha256: string;
  readonly claims?: Readonly<Record<string, string | number>>;
  readonly tenant?: string;
}

interface StoredKey {
  readonly digest: Buffer;
  readonly principal: Principal;
}

export function sha256(token: string): Buffer {
  // One-shot crypto.hash: a Hash object per request costs several times the digest itself.
  return hash('sha256', token, 'buffer');
}

export class ApiKeyVerifier {
  readonly #keys: readonly StoredKey[];

  constructor(entries: readonly ApiKeyEntry[]) {
    this.#keys = entries.map((entry) => ({
      digest: Buffer.from(entry.sha256, 'hex'),
      principal: Object.freeze({
        id: entry.name,
        authMethod: 'api-key' as const,
        // Null prototype: a claim named `constructor` or `__proto__` is just data.
        claims: Object.freeze(Object.assign(Object.create(null) as Record<string, unknown>, entry.claims ?? {})),
        ...(entry.tenant === undefined ? {} : { tenant: entry.tenant }),
      }),
    }));
  }

  get size(): number {
    return this.#keys.length;
  }

  verify(token: string): Principal {
    const presented = sha256(token);
    let matched: Principal | undefined;
    for (const key of this.#keys) {
      // Non-short-circuit: evaluate the comparison for every key, whatever matched before.
      const equal = timingSafeEqual(presented, key.digest);
      if (equal && matched === undefined) matched = key.principal;
    }
    if (matched === undefined) throw new AuthenticationError('unknown_api_key', 'api-key');
    return matched;
  }
}

/** Dev token: same constant-time comparison, one key. */
export function devTokenVerifier(devToken: string): (token: string) => boolean {
  const expected = sha256(devToken);
  return (token) => timingSafeEqual(sha256(token), expected);
}
