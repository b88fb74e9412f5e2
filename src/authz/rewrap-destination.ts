/**
 * `rewrapTo` patterns: where a rewrap may move a ciphertext, relative to what it is now.
 *
 * A pattern is a key pattern (glob.ts) that may hold `{context.NAME}` placeholders, replaced by
 * the value of NAME in the context stored in the ciphertext. So
 * `alias/{context.tenant}/*` lets an ops job move tenant A's data between tenant A's keys only,
 * without one rule per tenant. The stored context is authenticated by the ciphertext and was
 * checked by an encrypt rule when it was written; bind such keys with `fromClaims` there.
 *
 * A substituted value is matched literally: a value that is empty, or holds `*`, `?`, `{` or
 * `}`, makes the pattern match nothing (a context value must never widen a pattern).
 */
import { compileGlob } from './glob.js';

type Part = { readonly literal: string } | { readonly contextKey: string };

export interface DestinationTemplate {
  readonly parts: readonly Part[];
}

const PLACEHOLDER = /\{context\.([^{}]+)\}/g;

/** Why `pattern` is not a valid rewrapTo pattern, or undefined. For policy-validate.ts. */
export function destinationPatternProblem(pattern: string): string | undefined {
  const rest = pattern.replace(PLACEHOLDER, '');
  if (rest.includes('{') || rest.includes('}')) {
    return 'braces are only allowed as a {context.NAME} placeholder';
  }
  return undefined;
}

export function parseDestinationPattern(pattern: string): DestinationTemplate {
  const parts: Part[] = [];
  let last = 0;
  for (const match of pattern.matchAll(PLACEHOLDER)) {
    if (match.index > last) parts.push({ literal: pattern.slice(last, match.index) });
    parts.push({ contextKey: match[1] ?? '' });
    last = match.index + match[0].length;
  }
  if (last < pattern.length) parts.push({ literal: pattern.slice(last) });
  return { parts };
}

/** Does any of the destination's names match the template under this stored context? */
export function destinationMatches(
  template: DestinationTemplate,
  context: Readonly<Record<string, string>>,
  destinationKeyNames: readonly string[],
): boolean {
  let pattern = '';
  for (const part of template.parts) {
    if ('literal' in part) {
      pattern += part.literal;
      continue;
    }
    // Own string values only: the context is read back from a ciphertext.
    const value: unknown = Object.hasOwn(context, part.contextKey) ? context[part.contextKey] : undefined;
    if (typeof value !== 'string' || value === '' || /[*?{}]/.test(value)) return false;
    pattern += value;
  }
  return destinationKeyNames.some(compileGlob(pattern));
}
