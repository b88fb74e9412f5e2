/**
 * Policy.mayEverAllow: the cheap question asked before a request's body is read. It must say
 * "no" only when no rule could ever allow the principal the operation (so the 403 it leads to
 * is the one the operation would give), and "yes" whenever some rule might.
 */
import { describe, expect, it } from 'vitest';
import { Policy } from '../../src/authz/policy.js';
import type { Principal } from '../../src/authz/principal.js';

const apiKey = (id: string, claims: Record<string, unknown> = {}): Principal => ({ id, authMethod: 'api-key', claims });
const jwt = (id: string, claims: Record<string, unknown> = {}): Principal => ({ id, authMethod: 'jwt', claims });

const policy = new Policy([
  { id: 'billing', authMethods: ['api-key'], principals: ['billing-*'], operations: ['encrypt', 'decrypt'], keys: ['alias/billing'], context: { required: ['tenant'] }, maxPlaintextBytes: 10 },
  { id: 'tenants', authMethods: ['jwt'], principals: ['*'], operations: ['decrypt'], keys: ['*'], context: { fromClaims: { tenant: 'tenant' } } },
  { id: 'fixed', authMethods: ['jwt'], principals: ['*'], operations: ['rewrap'], keys: ['*'], context: { equals: { tenant: 'acme' }, fromClaims: { tenant: 'tenant' } } },
  { id: 'ops', authMethods: ['api-key'], principals: ['ops'], operations: ['admin:read'], keys: ['*'] },
]);

describe('Policy.mayEverAllow', () => {
  it('is true when a rule grants the operation to the principal, whatever its key, context or size constraints', () => {
    expect(policy.mayEverAllow(apiKey('billing-eu'), 'encrypt')).toBe(true);
    expect(policy.mayEverAllow(apiKey('ops'), 'admin:read')).toBe(true);
    expect(policy.mayEverAllow(jwt('alice', { tenant: 'acme' }), 'rewrap')).toBe(true);
  });

  it('is false for an operation no rule of the principal grants, another method, or a principal no rule names', () => {
    expect(policy.mayEverAllow(apiKey('billing-eu'), 'datakey')).toBe(false);
    expect(policy.mayEverAllow(apiKey('ops'), 'admin:cache')).toBe(false);
    expect(policy.mayEverAllow(jwt('billing-eu'), 'encrypt')).toBe(false);
    expect(policy.mayEverAllow(apiKey('stranger'), 'encrypt')).toBe(false);
  });

  it('is false when the only rules need a claim the principal lacks, or one with another fixed value', () => {
    expect(policy.mayEverAllow(jwt('bob'), 'decrypt')).toBe(false);
    expect(policy.mayEverAllow(jwt('bob', { tenant: 'other' }), 'rewrap')).toBe(false);
    expect(policy.mayEverAllow(jwt('bob', { tenant: 'other' }), 'decrypt')).toBe(true);
  });

  it('agrees with decide: whenever it is false, no request of that operation is allowed', () => {
    const principals = [apiKey('billing-eu'), apiKey('ops'), apiKey('stranger'), jwt('bob'), jwt('alice', { tenant: 'acme' }), jwt('carol', { tenant: 'x' })];
    const keyNames = ['alias/billing', 'alias/other', '*'];
    const contexts: Record<string, string>[] = [{}, { tenant: 'acme' }, { tenant: 'x' }];
    for (const principal of principals) {
      for (const operation of ['encrypt', 'decrypt', 'rewrap', 'datakey', 'admin:read', 'admin:cache'] as const) {
        if (policy.mayEverAllow(principal, operation)) continue;
        for (const key of keyNames) {
          for (const context of contexts) {
            expect(policy.decide(principal, { operation, keyNames: [key], context, plaintextBytes: 1 }).allowed).toBe(false);
          }
        }
      }
    }
  });
});
