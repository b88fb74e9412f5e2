/**
 * Encryption-context handling shared by the cache (partition keys), the envelope header and
 * validation. A context is a string map; its canonical form sorts keys by UTF-8 bytes, which
 * is what makes `{a, b}` and `{b, a}` the same partition and the same header bytes.
 */
import type { EncryptionContext } from '../kms/provider.js';
import { ENVELOPE_LIMITS } from './limits.js';

/** Context entries sorted by key (byte order), the one canonical order. */
export function sortedContextEntries(context: EncryptionContext): [string, string][] {
  return Object.entries(context).sort(([a], [b]) => compareUtf8(a, b));
}

/**
 * A string that is equal for equal contexts and different otherwise: each key and value is
 * length-prefixed, so no choice of keys and values can make two contexts collide. Every
 * encrypt and decrypt computes one (its cache partition): the keys are sorted alone, without
 * the entry pairs sortedContextEntries builds.
 */
export function canonicalContextKey(context: EncryptionContext): string {
  const keys = Object.keys(context);
  if (keys.length > 1) keys.sort(compareUtf8);
  let out = '';
  for (const key of keys) {
    const value = context[key]!;
    out += `${key.length}:${key}${value.length}:${value}`;
  }
  return out;
}

/**
 * Orders two strings as their UTF-8 bytes would (= code point order) without encoding them:
 * UTF-16 code units already sort by code point except that surrogates (U+D800-U+DFFF, the
 * halves of code points above U+FFFF) must sort after U+E000-U+FFFF. This runs for every
 * encrypt and decrypt (cache partition, header), so it allocates nothing.
 */
export function compareUtf8(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}

/** Returns why a context is unacceptable, or undefined if it is fine. */
export function contextProblem(context: EncryptionContext): string | undefined {
  const entries = Object.entries(context);
  if (entries.length > ENVELOPE_LIMITS.maxContextPairs) {
    return `context has more than ${ENVELOPE_LIMITS.maxContextPairs} entries`;
  }
  let total = 0;
  for (const [key, value] of entries) {
    if (typeof value !== 'string') return 'context values must be strings';
    const keyBytes = Buffer.byteLength(key, 'utf8');
    const valueBytes = Buffer.byteLength(value, 'utf8');
    if (keyBytes === 0 || keyBytes > ENVELOPE_LIMITS.maxContextKeyBytes) {
      return `context keys must be 1 to ${ENVELOPE_LIMITS.maxContextKeyBytes} bytes`;
    }
    if (valueBytes > ENVELOPE_LIMITS.maxContextValueBytes) {
      return `context values must be at most ${ENVELOPE_LIMITS.maxContextValueBytes} bytes`;
    }
    total += keyBytes + valueBytes;
  }
  if (total > ENVELOPE_LIMITS.maxContextTotalBytes) {
    return `context is larger than ${ENVELOPE_LIMITS.maxContextTotalBytes} bytes in total`;
  }
  return undefined;
}

/** True when two contexts hold exactly the same entries. */
export function sameContext(a: EncryptionContext, b: EncryptionContext): boolean {
  return canonicalContextKey(a) === canonicalContextKey(b);
}

/**
 * Copies an untrusted map into a null-prototype object so keys such as `__proto__` are plain
 * data and never touch Object.prototype.
 */
export function toContext(input: Readonly<Record<string, string>> | undefined): EncryptionContext {
  const context: Record<string, string> = Object.create(null) as Record<string, string>;
  if (input) {
    for (const key of Object.keys(input)) context[key] = input[key] as string;
  }
  return context;
}
