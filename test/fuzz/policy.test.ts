/**
 * Property tests for authorization (fast-check): random principals, claims, contexts and key
 * names against a few policies that use every kind of constraint.
 *
 * - decide() never throws and is deterministic;
 * - deny by default: a principal no rule names is never allowed, and an empty policy allows
 *   nothing;
 * - `__proto__`, `constructor` and other Object.prototype names in a context or in claims
 *   never grant anything extra, and neither does anything inherited through a prototype;
 * - glob matching agrees with a straightforward regular-expression reference implementation.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileGlob, compileGlobs, wildcardMatch } from '../../src/authz/glob.js';
import { Policy, type DecisionRequest, type RuleSpec } from '../../src/authz/policy.js';
import { OPERATIONS, type Principal } from '../../src/authz/principal.js';
import { seeded, testSeed } from '../helpers/seed.js';

const SEED = testSeed('test/fuzz/policy.test.ts');

const RULES: RuleSpec[] = [
  {
    id: 'tenant-bound',
    principals: ['svc-*'],
    operations: ['encrypt', 'decrypt'],
    keys: ['alias/tenant-*', 'arn:aws:kms:*:111122223333:key/*'],
    context: { required: ['purpose'], optional: ['env'], fromClaims: { tenant: 'tenant' } },
    maxPlaintextBytes: 1024,
  },
  { id: 'fixed-env', principals: ['ops-?'], operations: ['rewrap', 'decrypt'], keys: ['alias/shared'], context: { equals: { env: 'prod' } } },
  {
    id: 'k8s-namespace',
    principals: ['system:serviceaccount:*:*'],
    operations: ['datakey', 'datakey:plaintext'],
    keys: ['*'],
    context: { fromClaims: { ns: '/kubernetes.io/namespace' }, allowOthers: true },
  },
  { id: 'open', principals: ['batch'], operations: ['encrypt'], keys: ['alias/open'], context: { allowOthers: true } },
];
const policy = new Policy(RULES);

/** Names on Object.prototype (and the two JSON-parsing hazards) a hostile caller might use. */
const SPECIAL_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', '__defineGetter__', 'isPrototypeOf'];
const CONTEXT_KEYS = ['tenant', 'purpose', 'env', 'ns', 'other'];

/** An object with exactly these own keys, `__proto__` included (as JSON.parse makes it). */
function objectFrom(entries: readonly (readonly [string, unknown])[]): Record<string, unknown> {
  return JSON.parse(`{${entries.map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value ?? null)}`).join(',')}}`) as Record<string, unknown>;
}

const value = fc.oneof(fc.constantFrom('a', 'b', 'prod', 'dev', 'billing', 'ns1', ''), fc.string({ maxLength: 8 }));
const contextKey = fc.oneof(fc.constantFrom(...CONTEXT_KEYS), fc.constantFrom(...SPECIAL_KEYS), fc.string({ maxLength: 6 }));
const contextEntries = fc.uniqueArray(fc.tuple(contextKey, value), { maxLength: 6, selector: ([key]) => key });
const context = contextEntries.map((entries) => objectFrom(entries) as Record<string, string>);

const claimValue = fc.oneof(
  value,
  fc.integer({ min: -5, max: 5 }),
  fc.constantFrom(true, false, null, 1.5),
  fc.record({ namespace: value }),
  fc.array(value, { maxLength: 2 }),
);
const claims = fc
  .uniqueArray(fc.tuple(fc.oneof(fc.constantFrom('tenant', 'kubernetes.io', 'sub'), fc.constantFrom(...SPECIAL_KEYS)), claimValue), {
    maxLength: 4,
    selector: ([key]) => key,
  })
  .map(objectFrom);
const principalId = fc.oneof(
  fc.constantFrom('svc-a', 'svc-b', 'ops-1', 'ops-12', 'batch', 'system:serviceaccount:ns1:default', 'dev', ''),
  fc.string({ maxLength: 12 }),
);
const principal = fc.record({ id: principalId, authMethod: fc.constantFrom('api-key' as const, 'jwt' as const), claims });
const keyName = fc.oneof(
  fc.constantFrom(
    'alias/tenant-a',
    'alias/tenant-b',
    'alias/shared',
    'alias/open',
    'arn:aws:kms:eu-west-2:111122223333:key/abc',
    'arn:aws:kms:eu-west-2:999999999999:key/abc',
  ),
  fc.string({ maxLength: 12 }),
);
const request = fc.record({
  operation: fc.constantFrom(...OPERATIONS),
  keyNames: fc.array(keyName, { maxLength: 3 }),
  context,
  plaintextBytes: fc.option(fc.oneof(fc.nat({ max: 4096 }), fc.constantFrom(Number.NaN, -1, Number.POSITIVE_INFINITY, 1024, 1025)), { nil: undefined }),
}) as fc.Arbitrary<DecisionRequest>;

/**
 * Requests built around one rule (its principal, operation, key, a satisfying context and
 * claims), then perturbed: uniform random requests are almost always denied, so the properties
 * about what an allowed request implies would otherwise hardly be exercised.
 */
const GOOD: Record<string, { ids: string[]; keys: string[]; context: [string, string][] }> = {
  'tenant-bound': { ids: ['svc-a', 'svc-x'], keys: ['alias/tenant-a', 'arn:aws:kms:eu-west-2:111122223333:key/abc'], context: [['tenant', 'a'], ['purpose', 'billing'], ['env', 'prod']] },
  'fixed-env': { ids: ['ops-1', 'ops-z'], keys: ['alias/shared'], context: [['env', 'prod']] },
  'k8s-namespace': { ids: ['system:serviceaccount:ns1:default'], keys: ['alias/anything', 'arn:aws:kms:eu-west-2:999999999999:key/abc'], context: [['ns', 'ns1'], ['purpose', 'x']] },
  open: { ids: ['batch'], keys: ['alias/open'], context: [['tenant', 'b']] },
};
const GOOD_CLAIMS = objectFrom([['tenant', 'a'], ['kubernetes.io', { namespace: 'ns1' }]]);
const weighted = <T,>(likely: fc.Arbitrary<T>, random: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 4, arbitrary: likely }, { weight: 1, arbitrary: random });

const aroundRule: fc.Arbitrary<[Principal, DecisionRequest]> = fc.constantFrom(...RULES).chain((rule) => {
  const good = GOOD[rule.id]!;
  const who = fc.record({
    id: weighted(fc.constantFrom(...good.ids), principalId),
    authMethod: fc.constant('jwt' as const),
    claims: weighted(fc.constant(GOOD_CLAIMS), claims),
  });
  const ctx = fc
    .tuple(fc.subarray(good.context), weighted(fc.constant([] as [string, string][]), contextEntries))
    .map(([kept, extra]) => {
      const seen = new Set<string>();
      const merged = [...extra, ...kept].filter(([key]) => (seen.has(key) ? false : (seen.add(key), true)));
      return objectFrom(merged) as Record<string, string>;
    });
  const what = fc.record({
    operation: weighted(fc.constantFrom(...rule.operations), fc.constantFrom(...OPERATIONS)),
    keyNames: weighted(fc.constantFrom(...good.keys).map((key) => [key]), fc.array(keyName, { maxLength: 3 })),
    context: ctx,
    plaintextBytes: fc.option(fc.oneof(fc.nat({ max: 2048 }), fc.constantFrom(Number.NaN, -1, 1024, 1025)), { nil: undefined }),
  }) as fc.Arbitrary<DecisionRequest>;
  return fc.tuple(who, what);
});
const anyRequest: fc.Arbitrary<[Principal, DecisionRequest]> = fc.oneof(fc.tuple(principal, request), aroundRule);

const RUNS = seeded(SEED, 3_000);

describe('decide()', () => {
  it('never throws and is deterministic', () => {
    const again = new Policy(RULES);
    fc.assert(
      fc.property(anyRequest, ([who, what]) => {
        const first = policy.decide(who, what);
        expect(typeof first.allowed).toBe('boolean');
        expect(policy.decide(who, what)).toEqual(first);
        expect(again.decide(who, what)).toEqual(first);
      }),
      RUNS,
    );
  });

  it('deny by default: principals no rule names are never allowed; an empty policy allows nothing', () => {
    const empty = new Policy([]);
    // No rule's principal pattern starts with "x", so these match none of them.
    const stranger = fc.record({ id: fc.string({ maxLength: 12 }).map((id) => `x${id}`), authMethod: fc.constant('jwt' as const), claims });
    fc.assert(
      fc.property(stranger, anyRequest, (nobody, [anybody, what]) => {
        expect(policy.decide(nobody, what).allowed).toBe(false);
        expect(empty.decide(anybody, what).allowed).toBe(false);
      }),
      RUNS,
    );
  });

  it('allowed requests satisfy their rule: size cap, required keys, claim bindings', () => {
    fc.assert(
      fc.property(anyRequest, ([who, what]) => {
        const decision = policy.decide(who, what);
        if (!decision.allowed) return;
        if (decision.ruleId === 'tenant-bound') {
          expect(Object.hasOwn(what.context, 'purpose')).toBe(true);
          expect(what.context.tenant).toBe(String(who.claims.tenant));
          if (what.plaintextBytes !== undefined) expect(what.plaintextBytes).toBeLessThanOrEqual(1024);
        }
        if (decision.ruleId === 'fixed-env') expect(what.context.env).toBe('prod');
        if (decision.ruleId === 'k8s-namespace') expect(typeof what.context.ns).toBe('string');
      }),
      RUNS,
    );
  });

  it('Object.prototype names in a context never grant anything extra', () => {
    const extra = fc.uniqueArray(fc.tuple(fc.constantFrom(...SPECIAL_KEYS), value), { minLength: 1, maxLength: 3, selector: ([key]) => key });
    fc.assert(
      fc.property(anyRequest, extra, ([who, what], specials) => {
        const plain = objectFrom(Object.entries(what.context).filter(([key]) => !SPECIAL_KEYS.includes(key))) as Record<string, string>;
        const withSpecials = objectFrom([...Object.entries(plain), ...specials]) as Record<string, string>;
        const allowedWith = policy.decide(who, { ...what, context: withSpecials }).allowed;
        const allowedWithout = policy.decide(who, { ...what, context: plain }).allowed;
        // Adding such keys can only take a permission away (a rule that does not name them
        // refuses them), never give one.
        if (allowedWith) expect(allowedWithout).toBe(true);
      }),
      RUNS,
    );
  });

  it('values inherited through a prototype are not context entries', () => {
    const inherited = fc.record({ tenant: value, purpose: value, env: value, ns: value });
    fc.assert(
      fc.property(anyRequest, inherited, ([who, what], proto) => {
        const own = what.context;
        // defineProperty, not assignment: an own `__proto__` entry must stay an own entry.
        const viaPrototype = Object.create(proto) as Record<string, string>;
        for (const [key, entry] of Object.entries(own)) {
          Object.defineProperty(viaPrototype, key, { value: entry, enumerable: true, writable: true, configurable: true });
        }
        expect(policy.decide(who, { ...what, context: viaPrototype })).toEqual(policy.decide(who, { ...what, context: own }));
      }),
      RUNS,
    );
  });

  it('Object.prototype names in claims never satisfy a claim binding', () => {
    // A `__proto__` claim (own, as JSON.parse makes it) holding the bound claims must not bind.
    const smuggled = fc.record({ tenant: value, 'kubernetes.io': fc.record({ namespace: value }) });
    fc.assert(
      fc.property(anyRequest, smuggled, fc.constantFrom(...SPECIAL_KEYS), ([{ id }, what], hidden, key) => {
        const hostile: Principal = { id, authMethod: 'jwt', claims: objectFrom([[key, hidden]]) };
        const none: Principal = { id, authMethod: 'jwt', claims: {} };
        expect(policy.decide(hostile, what)).toEqual(policy.decide(none, what));
        const protoClaims: Principal = { id, authMethod: 'jwt', claims: Object.create(hidden) as Record<string, unknown> };
        expect(policy.decide(protoClaims, what)).toEqual(policy.decide(none, what));
      }),
      RUNS,
    );
  });

  it('__proto__ in a context does not touch Object.prototype', () => {
    fc.assert(
      fc.property(principal, request, (who, what) => {
        policy.decide(who, { ...what, context: objectFrom([['__proto__', 'polluted'], ['tenant', 'a']]) as Record<string, string> });
        expect(({} as Record<string, unknown>).tenant).toBeUndefined();
        expect(Object.getPrototypeOf({})).toBe(Object.prototype);
      }),
      seeded(SEED, 200),
    );
  });
});

/** Reference semantics: `*` any run (including none, `/` and `:`), `?` one UTF-16 unit, rest literal. */
function referenceGlob(pattern: string, input: string): boolean {
  const source = pattern
    .split('')
    .map((c) => (c === '*' ? '[\\s\\S]*' : c === '?' ? '[\\s\\S]' : c.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`).test(input);
}

describe('glob matching', () => {
  // A small alphabet so that matches are frequent; '*' and '?' also appear as input text.
  const unit = fc.constantFrom('a', 'b', '/', ':', '-', '.', '*', '?', '[', '{', '\\', 'é', '\u{1F600}');
  const pattern = fc.oneof(fc.string({ unit, maxLength: 10 }), fc.string({ maxLength: 8 }));
  const input = fc.oneof(fc.string({ unit: fc.constantFrom('a', 'b', '/', ':', '-', '.', '*', '?', 'é', '\u{1F600}'), maxLength: 24 }), fc.string({ maxLength: 12 }));

  it('agrees with a regular-expression reference implementation', () => {
    fc.assert(
      fc.property(pattern, input, (p, i) => {
        const expected = referenceGlob(p, i);
        expect(wildcardMatch(p, i)).toBe(expected);
        expect(compileGlob(p)(i)).toBe(expected);
      }),
      seeded(SEED, 20_000),
    );
  });

  it('a pattern list matches when any of its patterns does', () => {
    fc.assert(
      fc.property(fc.array(pattern, { maxLength: 4 }), input, (patterns, i) => {
        expect(compileGlobs(patterns)(i)).toBe(patterns.some((p) => referenceGlob(p, i)));
      }),
      seeded(SEED, 5_000),
    );
  });

  it('every string matches itself when it has no wildcard, and `*` matches everything', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
        if (!s.includes('*') && !s.includes('?')) expect(wildcardMatch(s, s)).toBe(true);
        expect(wildcardMatch('*', s)).toBe(true);
      }),
      seeded(SEED, 2_000),
    );
  });
});
