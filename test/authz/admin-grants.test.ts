/**
 * How a policy grants the admin operations: in rules of their own with `keys: ["*"]`, refused
 * with line and column otherwise; decided without a key; never listed as grants on keys.
 */
import { describe, expect, it } from 'vitest';
import { Policy } from '../../src/authz/policy.js';
import { PolicyError } from '../../src/authz/errors.js';
import { validatePolicyText } from '../../src/authz/policy-validate.js';
import { devPolicy } from '../../src/authz/policy.js';
import type { Principal } from '../../src/authz/principal.js';

const header = ['version: 1', 'authentication:', '  apiKeys:', '    - name: ops', `      sha256: "${'a'.repeat(64)}"`, 'rules:'];
const ops: Principal = { id: 'ops', authMethod: 'api-key', claims: {} };

function issuesOf(rule: string[]) {
  try {
    validatePolicyText([...header, ...rule].join('\n'), 'policy.yaml');
  } catch (error) {
    if (error instanceof PolicyError) return error.issues;
    throw error;
  }
  return [];
}

describe('admin operations in the policy', () => {
  it('a rule granting admin operations with keys: ["*"] is valid', () => {
    expect(issuesOf(['  - id: admin', '    principals: [ops]', '    operations: [admin:read, admin:cache, admin:policy]', '    keys: ["*"]'])).toEqual([]);
  });

  it('is refused with narrower keys, mixed with data operations, or with key constraints', () => {
    expect(issuesOf(['  - id: admin', '    principals: [ops]', '    operations: [admin:read, encrypt]', '    keys: [alias/x]', '    maxPlaintextBytes: 10'])).toEqual([
      { line: 9, column: 17, field: 'rules[0].operations', message: 'admin operations (admin:*) go in a rule of their own, without data operations' },
      { line: 10, column: 11, field: 'rules[0].keys', message: 'a rule granting admin operations must have keys: ["*"] (they concern no KMS key)' },
      { line: 11, column: 5, field: 'rules[0].maxPlaintextBytes', message: 'maxPlaintextBytes does not apply to admin operations' },
    ]);
  });

  it('is decided without a key: only a rule naming the operation grants it', () => {
    const policy = new Policy([
      { id: 'read', principals: ['ops'], operations: ['admin:read'], keys: ['*'] },
      { id: 'data', principals: ['ops'], operations: ['encrypt'], keys: ['*'] },
    ]);
    expect(policy.decideAdmin(ops, 'admin:read')).toEqual({ allowed: true, ruleId: 'read' });
    expect(policy.decideAdmin(ops, 'admin:cache')).toEqual({ allowed: false, reason: 'no rule grants "admin:cache" to "ops"' });
    expect(policy.decideAdmin({ ...ops, id: 'other' }, 'admin:read').allowed).toBe(false);
  });

  it('is not a grant on keys (GET /v1/keys)', () => {
    const policy = new Policy([{ id: 'read', principals: ['ops'], operations: ['admin:read'], keys: ['*'] }]);
    expect(policy.listGrants(ops)).toEqual([]);
    expect(devPolicy().listGrants({ id: 'dev', authMethod: 'dev-token', claims: {} })[0]?.operations).not.toContain('admin:read');
  });
});
