/**
 * Wildcard patterns for principal ids and key names.
 *
 * Semantics are AWS IAM's, because the people writing policies already know them from IAM and
 * KMS key policies: `*` matches any run of characters (including none, and including `/` and
 * `:`), `?` matches exactly one character, everything else is literal and case-sensitive.
 * There are no character classes, braces, negation or escapes: a policy pattern should be
 * readable without knowing a glob dialect, and `alias/tenant-a` must never mean anything but
 * itself.
 *
 * Why not picomatch: its `*` stops at `/`, so `arn:aws:kms:*:*:key/*` would need `**` and
 * `alias/team/*` would silently not match `alias/team/sub/key`; path-glob features (braces,
 * extglobs, dotfiles) have no meaning for ARNs and would only add surprises.
 *
 * Matching is the classic two-pointer wildcard algorithm (backtrack only to the most recent
 * `*`): O(pattern × input) worst case, no regular expression, so no pattern in a policy file
 * can cause catastrophic backtracking.
 */

export type GlobMatcher = (input: string) => boolean;

/** Compiles a pattern once; the returned function is what hot paths call. */
export function compileGlob(pattern: string): GlobMatcher {
  if (!pattern.includes('*') && !pattern.includes('?')) {
    return (input) => input === pattern;
  }
  if (pattern === '*') return () => true;
  return (input) => wildcardMatch(pattern, input);
}

/** True when `input` matches `pattern` in full (anchored at both ends). */
export function wildcardMatch(pattern: string, input: string): boolean {
  let p = 0;
  let i = 0;
  // Position of the last `*` seen in the pattern, and where in the input it started matching.
  let starP = -1;
  let starI = 0;
  while (i < input.length) {
    const pc = pattern[p];
    if (pc === '?' || (pc !== undefined && pc !== '*' && pc === input[i])) {
      p++;
      i++;
    } else if (pc === '*') {
      starP = p++;
      starI = i;
    } else if (starP !== -1) {
      // Mismatch after a `*`: let that star swallow one more input character and retry.
      p = starP + 1;
      i = ++starI;
    } else {
      return false;
    }
  }
  // Input consumed: the rest of the pattern must be stars only.
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

/** A compiled list of patterns: matches when any pattern matches. */
export function compileGlobs(patterns: readonly string[]): GlobMatcher {
  const matchers = patterns.map(compileGlob);
  return (input) => matchers.some((match) => match(input));
}
