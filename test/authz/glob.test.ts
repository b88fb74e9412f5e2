import { describe, expect, it } from 'vitest';
import { compileGlob, compileGlobs, wildcardMatch } from '../../src/authz/glob.js';

describe('glob semantics (IAM-style: * any run incl. / and :, ? one char)', () => {
  it.each([
    ['alias/tenant-a', 'alias/tenant-a', true],
    ['alias/tenant-a', 'alias/tenant-ab', false],
    ['alias/tenant-a', 'Alias/tenant-a', false], // case-sensitive
    ['alias/tenant-a/*', 'alias/tenant-a/billing', true],
    ['alias/tenant-a/*', 'alias/tenant-a/billing/2025', true], // * crosses "/"
    ['alias/tenant-a/*', 'alias/tenant-a', false],
    ['alias/tenant-*', 'alias/tenant-b', true],
    ['arn:aws:kms:*:*:key/*', 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab', true], // * crosses ":"
    ['arn:aws:kms:*:111122223333:key/*', 'arn:aws:kms:eu-west-1:999999999999:key/x', false],
    ['arn:aws:kms:*:*:key/*', 'arn:aws:kms:eu-west-1:111122223333:alias/x', false],
    ['system:serviceaccount:a:*', 'system:serviceaccount:a:worker', true],
    ['system:serviceaccount:a:*', 'system:serviceaccount:ab:worker', false],
    ['svc-?', 'svc-a', true],
    ['svc-?', 'svc-ab', false],
    ['svc-?', 'svc-', false],
    ['*', '', true],
    ['*', 'anything/at:all', true],
    ['a*b*c', 'abc', true],
    ['a*b*c', 'axxbyyc', true],
    ['a*b*c', 'axxbyy', false],
    ['*a', 'ba', true],
    ['**', 'x', true],
    // Bracket, brace and ! syntax are literal: no glob dialect to learn.
    ['alias/{a,b}', 'alias/a', false],
    ['alias/{a,b}', 'alias/{a,b}', true],
    ['alias/[ab]', 'alias/a', false],
    ['!alias/a', 'alias/b', false],
    ['alias/a.b', 'alias/aXb', false],
  ])('%s vs %s -> %s', (pattern, input, expected) => {
    expect(wildcardMatch(pattern, input)).toBe(expected);
    expect(compileGlob(pattern)(input)).toBe(expected);
  });

  it('is linear enough for pathological patterns (no regex backtracking)', () => {
    const pattern = `${'*a'.repeat(20)}*b`;
    const input = 'a'.repeat(5000);
    const started = performance.now();
    expect(wildcardMatch(pattern, input)).toBe(false);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('compileGlobs matches when any pattern does', () => {
    const match = compileGlobs(['alias/a', 'alias/b/*']);
    expect(match('alias/a')).toBe(true);
    expect(match('alias/b/c')).toBe(true);
    expect(match('alias/c')).toBe(false);
  });
});
