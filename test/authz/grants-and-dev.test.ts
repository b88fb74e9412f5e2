import { describe, expect, it } from 'vitest';
import { DEV_PRINCIPAL_ID, Policy, devPolicy, operationsForKey } from '../../src/authz/policy.js';
import { DATA_OPERATIONS, OPERATIONS, type Principal } from '../../src/authz/principal.js';

const dev: Principal = { id: DEV_PRINCIPAL_ID, authMethod: 'dev-token', claims: {} };

describe('dev policy', () => {
  it('allows every operation on every key with any context', () => {
    const policy = devPolicy();
    for (const operation of OPERATIONS) {
      const decision = policy.decide(dev, {
        operation,
        keyNames: ['arn:aws:kms:local:000000000000:key/x', 'alias/anything'],
        context: { any: 'thing', other: 'value' },
        plaintextBytes: 10 * 1024 * 1024,
      });
      expect(decision).toEqual({ allowed: true, ruleId: 'dev-all' });
    }
  });

  it('grants nothing to any other principal', () => {
    const other: Principal = { id: 'someone', authMethod: 'api-key', claims: {} };
    expect(devPolicy().decide(other, { operation: 'encrypt', keyNames: ['alias/default'], context: {} }).allowed).toBe(false);
    expect(devPolicy().listGrants(other)).toEqual([]);
  });

  it('lists all operations on keys for GET /v1/keys (admin operations concern no key)', () => {
    const grants = devPolicy().listGrants(dev);
    expect(operationsForKey(grants, ['alias/default'])).toEqual([...DATA_OPERATIONS]);
  });
});

describe('listGrants / operationsForKey', () => {
  const policy = new Policy([
    {
      id: 'a',
      principals: ['svc-a'],
      operations: ['decrypt', 'encrypt'],
      keys: ['alias/tenant-a'],
      context: { equals: { purpose: 'billing' }, fromClaims: { tenant: 'tenant' }, optional: ['note'] },
      maxPlaintextBytes: 100,
    },
    { id: 'a-dk', principals: ['svc-*'], operations: ['datakey'], keys: ['alias/tenant-*'] },
    { id: 'needs-claim', principals: ['svc-a'], operations: ['rewrap'], keys: ['*'], context: { fromClaims: { region: 'region' } } },
    { id: 'other', principals: ['svc-b'], operations: ['rewrap'], keys: ['*'] },
  ]);
  const svcA: Principal = { id: 'svc-a', authMethod: 'api-key', claims: { tenant: 'a' } };

  it('lists the rules that can apply, with bindings resolved to the caller\'s values', () => {
    expect(policy.listGrants(svcA)).toEqual([
      {
        ruleId: 'a',
        keys: ['alias/tenant-a'],
        operations: ['encrypt', 'decrypt'], // canonical order
        context: { required: ['purpose', 'tenant'], equals: { purpose: 'billing', tenant: 'a' }, optional: ['note'], allowOthers: false },
        maxPlaintextBytes: 100,
      },
      {
        ruleId: 'a-dk',
        keys: ['alias/tenant-*'],
        operations: ['datakey'],
        context: { required: [], equals: {}, optional: [], allowOthers: false },
      },
      // needs-claim is left out: svc-a has no `region` claim, so it can never apply.
    ]);
  });

  it('intersects with the provider\'s keys', () => {
    const grants = policy.listGrants(svcA);
    expect(operationsForKey(grants, ['alias/tenant-a', 'arn:aws:kms:r:1:key/a'])).toEqual(['encrypt', 'decrypt', 'datakey']);
    expect(operationsForKey(grants, ['alias/tenant-b'])).toEqual(['datakey']);
    expect(operationsForKey(grants, ['alias/default'])).toEqual([]);
  });

  it('grants are plain JSON', () => {
    const grants = policy.listGrants(svcA);
    expect(JSON.parse(JSON.stringify(grants))).toEqual(grants);
  });
});
