/**
 * The policy matrix: every operation, allowed and denied by each kind of constraint, against
 * test/fixtures/policy/matrix.yaml (loaded through the real loader).
 */
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadPolicyFile } from '../../src/authz/policy-load.js';
import { Policy, type DecisionRequest } from '../../src/authz/policy.js';
import { validatePolicyText } from '../../src/authz/policy-validate.js';
import { DATA_OPERATIONS, type Principal } from '../../src/authz/principal.js';

const fixture = fileURLToPath(new URL('../fixtures/policy/matrix.yaml', import.meta.url));

const svcA: Principal = { id: 'svc-a', authMethod: 'api-key', claims: { tenant: 'a' } };
const svcB: Principal = { id: 'svc-b', authMethod: 'api-key', claims: { tenant: 'b' } };
const ops: Principal = { id: 'ops-rotation', authMethod: 'api-key', claims: {} };
const stranger: Principal = { id: 'svc-z', authMethod: 'api-key', claims: { tenant: 'a' } };

const goodContext = { tenant: 'a', purpose: 'billing', env: 'prod' };
const arnA = 'arn:aws:kms:eu-west-1:111122223333:key/aaaa-1111';

let policy: Policy;
beforeAll(async () => {
  ({ policy } = await loadPolicyFile(fixture));
});

type Case = {
  name: string;
  principal: Principal;
  request: Omit<DecisionRequest, 'operation'>;
  /** ruleId when allowed; a fragment of the deny reason otherwise. */
  allow?: string;
  deny?: string;
};

const cases: Case[] = [
  { name: 'allowed with every constraint met', principal: svcA, request: { keyNames: ['alias/tenant-a'], context: goodContext, plaintextBytes: 10 }, allow: 'tenant-a-all' },
  {
    name: 'allowed via the resolved ARN when the alias is not in the rule',
    principal: svcA,
    request: { keyNames: ['alias/other-name', arnA], context: goodContext },
    allow: 'tenant-a-all',
  },
  { name: 'denied: key not granted', principal: svcA, request: { keyNames: ['alias/tenant-b'], context: goodContext }, deny: 'no rule grants' },
  {
    name: 'denied: ARN in another account',
    principal: svcA,
    request: { keyNames: ['arn:aws:kms:eu-west-1:999999999999:key/aaaa-1111'], context: goodContext },
    deny: 'no rule grants',
  },
  { name: 'denied: unknown principal', principal: stranger, request: { keyNames: ['alias/tenant-a'], context: goodContext }, deny: 'no rule grants' },
  {
    name: 'denied: required context key missing',
    principal: svcA,
    request: { keyNames: ['alias/tenant-a'], context: { tenant: 'a', env: 'prod' } },
    deny: 'missing required context key "purpose"',
  },
  {
    name: 'denied: fixed value wrong',
    principal: svcA,
    request: { keyNames: ['alias/tenant-a'], context: { ...goodContext, env: 'dev' } },
    deny: 'context key "env" does not have the fixed value',
  },
  {
    name: 'denied: fixed-value key missing',
    principal: svcA,
    request: { keyNames: ['alias/tenant-a'], context: { tenant: 'a', purpose: 'billing' } },
    deny: 'missing required context key "env"',
  },
  {
    name: "denied: claim binding (tenant A's principal, tenant=b context)",
    principal: svcA,
    request: { keyNames: ['alias/tenant-a'], context: { ...goodContext, tenant: 'b' } },
    deny: 'does not equal the principal\'s claim "tenant"',
  },
  {
    name: 'denied: bound context key missing',
    principal: svcA,
    request: { keyNames: ['alias/tenant-a'], context: { purpose: 'billing', env: 'prod' } },
    deny: 'missing required context key "tenant"',
  },
  {
    name: 'denied: principal lacks the bound claim',
    principal: { ...svcA, claims: {} },
    request: { keyNames: ['alias/tenant-a'], context: goodContext },
    deny: 'principal has no string or number claim "tenant"',
  },
  {
    name: 'denied: context key the rule does not name (allowOthers defaults to false)',
    principal: svcA,
    request: { keyNames: ['alias/tenant-a'], context: { ...goodContext, extra: 'x' } },
    deny: 'context key "extra" is not allowed',
  },
  {
    name: 'denied: plaintext larger than maxPlaintextBytes',
    principal: svcA,
    request: { keyNames: ['alias/tenant-a'], context: goodContext, plaintextBytes: 1025 },
    deny: 'exceeds maxPlaintextBytes 1024',
  },
  { name: 'allowed: plaintext exactly maxPlaintextBytes', principal: svcA, request: { keyNames: ['alias/tenant-a'], context: goodContext, plaintextBytes: 1024 }, allow: 'tenant-a-all' },
  { name: 'allowed: size not applicable (omitted)', principal: svcA, request: { keyNames: ['alias/tenant-a'], context: goodContext }, allow: 'tenant-a-all' },
  { name: 'denied: NaN size fails closed', principal: svcA, request: { keyNames: ['alias/tenant-a'], context: goodContext, plaintextBytes: Number.NaN }, deny: 'exceeds' },
  { name: 'denied: no key names at all', principal: svcA, request: { keyNames: [], context: goodContext }, deny: 'no key name' },
];

describe.each(DATA_OPERATIONS)('operation %s', (operation) => {
  it.each(cases)('$name', ({ principal, request, allow, deny }) => {
    const decision = policy.decide(principal, { ...request, operation });
    if (allow !== undefined) {
      expect(decision).toEqual({ allowed: true, ruleId: allow });
    } else {
      expect(decision.allowed).toBe(false);
      if (!decision.allowed) expect(decision.reason).toContain(deny);
    }
  });
});

describe('operations are granted individually', () => {
  const datakeyB = (operation: DecisionRequest['operation']) =>
    policy.decide(svcB, { operation, keyNames: ['alias/tenant-b'], context: { tenant: 'b' } });

  it('datakey does not imply datakey:plaintext', () => {
    expect(datakeyB('datakey')).toEqual({ allowed: true, ruleId: 'tenant-b-datakey' });
    expect(datakeyB('datakey:plaintext').allowed).toBe(false);
  });

  it.each(['encrypt', 'decrypt', 'rewrap'] as const)('tenant B datakey principal cannot %s', (operation) => {
    expect(datakeyB(operation).allowed).toBe(false);
  });

  it('ops may rewrap any key of the account, with any context, and nothing else', () => {
    const request = { keyNames: ['arn:aws:kms:us-east-1:111122223333:key/bbbb'], context: { tenant: 'b', anything: 'goes' } };
    expect(policy.decide(ops, { ...request, operation: 'rewrap' })).toEqual({ allowed: true, ruleId: 'ops-rewrap' });
    for (const operation of ['encrypt', 'decrypt', 'datakey', 'datakey:plaintext'] as const) {
      expect(policy.decide(ops, { ...request, operation }).allowed).toBe(false);
    }
  });
});

describe('first match', () => {
  it('the first fully matching rule in file order is credited', () => {
    const decision = policy.decide(svcB, { operation: 'encrypt', keyNames: ['alias/shared'], context: {} });
    expect(decision).toEqual({ allowed: true, ruleId: 'shared-first' });
  });

  it('a later rule applies when an earlier one does not match the operation', () => {
    const decision = policy.decide(svcB, { operation: 'decrypt', keyNames: ['alias/shared'], context: {} });
    expect(decision).toEqual({ allowed: true, ruleId: 'shared-second' });
  });

  it('a later rule applies when an earlier one fails a constraint (rules only grant)', () => {
    // tenant-a-all matches svc-a, encrypt and the ARN but fails its context check;
    // shared-second matches alias/shared-x and accepts any context.
    const decision = policy.decide(svcA, { operation: 'encrypt', keyNames: ['alias/shared-x', arnA], context: { other: '1' } });
    expect(decision).toEqual({ allowed: true, ruleId: 'shared-second' });
  });
});

describe('context defaults', () => {
  const bare = new Policy([{ id: 'bare', principals: ['*'], operations: ['encrypt'], keys: ['*'] }]);

  it('a rule without a context section admits only the empty context', () => {
    expect(bare.decide(svcA, { operation: 'encrypt', keyNames: ['k'], context: {} })).toEqual({ allowed: true, ruleId: 'bare' });
    expect(bare.decide(svcA, { operation: 'encrypt', keyNames: ['k'], context: { tenant: 'a' } }).allowed).toBe(false);
  });

  it('optional keys may be present or absent; others still refused', () => {
    const p = new Policy([{ id: 'o', principals: ['*'], operations: ['encrypt'], keys: ['*'], context: { optional: ['note'] } }]);
    const decide = (context: Record<string, string>) => p.decide(svcA, { operation: 'encrypt', keyNames: ['k'], context }).allowed;
    expect(decide({})).toBe(true);
    expect(decide({ note: 'x' })).toBe(true);
    expect(decide({ note: 'x', other: 'y' })).toBe(false);
  });
});

describe('untrusted keys cannot reach Object.prototype', () => {
  it('a missing claim named like a prototype member is missing', () => {
    const { spec } = validatePolicyText(
      [
        'version: 1',
        'authentication: { apiKeys: [{ name: x, sha256: "' + '0'.repeat(64) + '" }] }',
        'rules:',
        '  - id: proto',
        '    principals: ["*"]',
        '    operations: [encrypt]',
        '    keys: ["*"]',
        '    context: { fromClaims: { tenant: constructor, owner: __proto__ } }',
      ].join('\n'),
      'inline.yaml',
    );
    const p = new Policy(spec.rules);
    const principal: Principal = { id: 'x', authMethod: 'api-key', claims: {} };
    const context = { tenant: String(Object.prototype.constructor), owner: String(Object.prototype) };
    expect(p.decide(principal, { operation: 'encrypt', keyNames: ['k'], context }).allowed).toBe(false);
  });

  it('a __proto__ key in the policy file is an ordinary key, and pollutes nothing', () => {
    const { spec } = validatePolicyText(
      [
        'version: 1',
        'authentication: { apiKeys: [{ name: x, sha256: "' + '0'.repeat(64) + '", claims: { __proto__: polluted } }] }',
        'rules:',
        '  - { id: p, principals: ["*"], operations: [encrypt], keys: ["*"], context: { equals: { __proto__: evil } } }',
      ].join('\n'),
      'inline.yaml',
    );
    expect(Object.getPrototypeOf({})).toBe(Object.prototype);
    expect(Object.hasOwn(spec.authentication.apiKeys?.[0]?.claims ?? {}, '__proto__')).toBe(true);
    const p = new Policy(spec.rules);
    const withKey = JSON.parse('{"__proto__":"evil"}') as Record<string, string>;
    expect(p.decide(svcA, { operation: 'encrypt', keyNames: ['k'], context: withKey }).allowed).toBe(true);
    expect(p.decide(svcA, { operation: 'encrypt', keyNames: ['k'], context: {} }).allowed).toBe(false);
  });

  it('a __proto__ key in a parsed context is an ordinary (unlisted) key', () => {
    const context = JSON.parse('{"tenant":"a","purpose":"p","env":"prod","__proto__":"x"}') as Record<string, string>;
    const decision = policy.decide(svcA, { operation: 'encrypt', keyNames: ['alias/tenant-a'], context });
    expect(decision.allowed).toBe(false);
    if (!decision.allowed) expect(decision.reason).toContain('"__proto__" is not allowed');
  });

  it('a required key named constructor is not satisfied by the prototype', () => {
    const p = new Policy([
      { id: 'r', principals: ['*'], operations: ['encrypt'], keys: ['*'], context: { required: ['constructor'], equals: { toString: 'x' } } },
    ]);
    expect(p.decide(svcA, { operation: 'encrypt', keyNames: ['k'], context: {} }).allowed).toBe(false);
  });

  it('claims that are objects, booleans or empty strings never bind', () => {
    const p = new Policy([{ id: 'r', principals: ['*'], operations: ['encrypt'], keys: ['*'], context: { fromClaims: { t: 't' } } }]);
    for (const [claim, value] of [
      [{ a: 1 }, '[object Object]'],
      [true, 'true'],
      [null, 'null'],
      ['', ''],
      [['a'], 'a'],
    ] as const) {
      const principal: Principal = { id: 'x', authMethod: 'jwt', claims: { t: claim } };
      expect(p.decide(principal, { operation: 'encrypt', keyNames: ['k'], context: { t: value } }).allowed).toBe(false);
    }
    const numeric: Principal = { id: 'x', authMethod: 'jwt', claims: { t: 42 } };
    expect(p.decide(numeric, { operation: 'encrypt', keyNames: ['k'], context: { t: '42' } }).allowed).toBe(true);
  });

  it('JSON Pointer claim references reach nested claims (Kubernetes tokens)', () => {
    const p = new Policy([
      { id: 'k8s', principals: ['system:serviceaccount:*'], operations: ['decrypt'], keys: ['*'], context: { fromClaims: { tenant: '/kubernetes.io/namespace' } } },
    ]);
    const principal: Principal = {
      id: 'system:serviceaccount:tenant-b:worker',
      authMethod: 'jwt',
      claims: { 'kubernetes.io': { namespace: 'tenant-b', serviceaccount: { name: 'worker' } } },
    };
    expect(p.decide(principal, { operation: 'decrypt', keyNames: ['k'], context: { tenant: 'tenant-b' } }).allowed).toBe(true);
    expect(p.decide(principal, { operation: 'decrypt', keyNames: ['k'], context: { tenant: 'tenant-a' } }).allowed).toBe(false);
  });
});
