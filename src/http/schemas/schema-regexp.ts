/**
 * The regular-expression engine Ajv compiles the schemas' patterns with (buildApp passes it as
 * `ajv.customOptions.code.regExp`). Every pattern becomes a plain RegExp except BASE64_PATTERN,
 * matched in linear time by isStandardBase64 (exactly the same strings). Why: V8 matches the
 * pattern's repeated four-character group with a backtracking stack that grows with the input,
 * so a valid multi-megabyte plaintext would overflow the stack (a 500) and large ones are slow.
 * The schemas and openapi.yaml keep the pattern as written.
 */
import { BASE64_PATTERN } from './schemas.js';

/**
 * BASE64_PATTERN's language: a multiple of 4 characters, alphabet characters, then at most two
 * `=`. The character class deliberately includes `_`, which indexOf then rules out: V8 matches
 * [A-Za-z0-9_+/] through a lookup table, but [A-Za-z0-9+/] through range comparisons, which are
 * slower on random data.
 */
export function isStandardBase64(value: string): boolean {
  return value.length % 4 === 0 && BASE64_WITH_UNDERSCORE.test(value) && value.indexOf('_') === -1;
}
const BASE64_WITH_UNDERSCORE = /^[A-Za-z0-9_+/]*={0,2}$/;
const BASE64_MATCHER = { test: isStandardBase64, toString: () => `/${BASE64_PATTERN}/ (isStandardBase64)` };

export const schemaRegExp = Object.assign(
  (pattern: string, flags: string): { test(value: string): boolean } =>
    pattern === BASE64_PATTERN ? BASE64_MATCHER : new RegExp(pattern, flags),
  { code: 'schemaRegExp' },
);
