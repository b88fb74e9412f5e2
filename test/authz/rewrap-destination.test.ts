/**
 * A rewrap grant on several tenants' keys must not move one tenant's data under another
 * tenant's key: the destination is judged relative to the source, by the rule's `rewrapTo`
 * patterns or, without them, as "a key the caller may encrypt to with the stored context".
 */
import { describe, expect, it } from 'vitest';
import { Policy } from '../../src/authz/policy.js';
import { PolicyError } from '../../src/authz/errors.js';
import { validatePolicyText } from '../../src/authz/policy-validate.js';
import { type Principal } from '../../src/authz/principal.js';

const ops: Principal = { id: 'ops', authMethod: 'api-key', claims: {} };
const svcA: Principal = { id: 'svc-a', authMethod: 'api-key', claims: { tenant: 'tenant-a' } };
const A = { tenant: 'tenant-a' };

const policy = new Policy([
  {
    id: 'ops-rotate',
    principals: ['ops'],
    operations: ['rewrap'],
    keys: ['alias/tenant-*'],
    rewrapTo: ['alias/{context.tenant}', 'alias/{context.tenant}/*'],
    context: { allowOthers: true },
  },
  // No rewrapTo: only where svc-a may encrypt itself.
  {
    id: 'svc-a-rotate',
    principals: ['svc-a'],
    operations: ['rewrap'],
    keys: ['alias/tenant-*'],
    context: { fromClaims: { tenant: 'tenant' } },
  },
  {
    id: 'svc-a-encrypt',
    principals: ['svc-a'],
    operations: ['encrypt'],
    keys: ['alias/tenant-a', 'alias/tenant-a/*'],
    context: { fromClaims: { tenant: 'tenant' } },
    maxPlaintextBytes: 1000,
  },
]);

const move = (principal: Principal, destination: string, context: Record<string, string> = A, plaintextBytes = 10) =>
  policy.decideRewrapDestination(principal, {
    sourceKeyNames: ['arn:aws:kms:eu-west-2:1:key/a', 'alias/tenant-a'],
    destinationKeyNames: [destination, `arn:aws:kms:eu-west-2:1:key/${destination.slice(-1)}`],
    context,
    plaintextBytes,
  });

describe('rewrap destination relative to the source', () => {
  it('rewrapTo: within the stored context\'s tenant, never to another tenant\'s key', () => {
    expect(move(ops, 'alias/tenant-a')).toEqual({ allowed: true, ruleId: 'ops-rotate' });
    expect(move(ops, 'alias/tenant-a/2025')).toEqual({ allowed: true, ruleId: 'ops-rotate' });
    const denied = move(ops, 'alias/tenant-b');
    expect(denied).toEqual({ allowed: false, reason: expect.stringContaining('not in the rule\'s rewrapTo') });
    // The reason names keys, never context values.
    expect(JSON.stringify(denied)).not.toContain('tenant-a"');
    expect(move(ops, 'alias/tenant-b', { tenant: 'tenant-b' })).toEqual({ allowed: true, ruleId: 'ops-rotate' });
  });

  it('a placeholder whose context key is missing, empty or a wildcard matches nothing', () => {
    expect(move(ops, 'alias/tenant-a', {}).allowed).toBe(false);
    expect(move(ops, 'alias/', { tenant: '' }).allowed).toBe(false);
    expect(move(ops, 'alias/tenant-b', { tenant: '*' }).allowed).toBe(false);
    expect(move(ops, 'alias/tenant-b', { tenant: 'tenant-?' }).allowed).toBe(false);
    expect(move(ops, 'alias/tenant-b', { tenant: '{context.x}' }).allowed).toBe(false);
  });

  it('without rewrapTo: only to a key the caller may encrypt to with the stored context and size', () => {
    expect(move(svcA, 'alias/tenant-a/2025')).toEqual({ allowed: true, ruleId: 'svc-a-rotate' });
    expect(move(svcA, 'alias/tenant-b')).toEqual({ allowed: false, reason: expect.stringContaining('may encrypt to') });
    expect(move(svcA, 'alias/tenant-a/2025', A, 5000).allowed).toBe(false);
  });

  it('a rule that does not grant the source cannot lend its destinations', () => {
    expect(move(svcA, 'alias/tenant-a', { tenant: 'tenant-b' })).toEqual({ allowed: false, reason: expect.stringContaining('no rule grants "rewrap"') });
    const stranger: Principal = { id: 'ops', authMethod: 'jwt', claims: {} };
    const onlyApiKeys = new Policy([{ id: 'r', authMethods: ['api-key'], principals: ['ops'], operations: ['rewrap'], keys: ['*'], rewrapTo: ['*'] }]);
    const request = { sourceKeyNames: ['alias/x'], destinationKeyNames: ['alias/y'], context: {} };
    expect(onlyApiKeys.decideRewrapDestination(ops, request).allowed).toBe(true);
    expect(onlyApiKeys.decideRewrapDestination(stranger, request).allowed).toBe(false);
  });
});

describe('rewrapTo in the policy file', () => {
  const file = (rule: string[]) =>
    ['version: 1', 'authentication:', '  apiKeys:', '    - name: ops', `      sha256: "${'a'.repeat(64)}"`, 'rules:', ...rule].join('\n');
  const issues = (text: string) => {
    try {
      validatePolicyText(text, 'policy.yaml');
    } catch (error) {
      if (error instanceof PolicyError) return error.issues;
      throw error;
    }
    return [];
  };

  it('accepts placeholders and refuses other braces, with line and field', () => {
    const base = ['  - id: r', '    principals: [ops]', '    operations: [rewrap]', '    keys: ["*"]'];
    expect(issues(file([...base, '    rewrapTo: ["alias/{context.tenant}/*"]']))).toEqual([]);
    expect(issues(file([...base, '    rewrapTo: ["alias/{tenant}", "alias/{context.x"]']))).toEqual([
      expect.objectContaining({ line: 11, field: 'rules[0].rewrapTo[0]', message: expect.stringContaining('{context.NAME}') }),
      expect.objectContaining({ line: 11, field: 'rules[0].rewrapTo[1]' }),
    ]);
  });

  it('refuses rewrapTo on a rule that does not grant rewrap', () => {
    const rule = ['  - id: r', '    principals: [ops]', '    operations: [encrypt]', '    keys: ["*"]', '    rewrapTo: ["*"]'];
    expect(issues(file(rule))).toEqual([expect.objectContaining({ field: 'rules[0].rewrapTo', message: 'rewrapTo only applies to rules that grant rewrap' })]);
  });
});
