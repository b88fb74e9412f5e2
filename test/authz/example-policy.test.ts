/**
 * examples/policy.yaml is what docs/POLICY.md's worked example shows and what docker-compose
 * mounts: it must load, must match the document byte for byte, and must decide the table in
 * the document the way the document says.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadPolicyFile, type LoadedPolicy } from '../../src/authz/policy-load.js';
import { operationsForKey, type DecisionRequest } from '../../src/authz/policy.js';
import type { Principal } from '../../src/authz/principal.js';

const examplePath = fileURLToPath(new URL('../../examples/policy.yaml', import.meta.url));
const docPath = fileURLToPath(new URL('../../docs/POLICY.md', import.meta.url));

let loaded: LoadedPolicy;
beforeAll(async () => {
  loaded = await loadPolicyFile(examplePath);
});

const k8sWorker: Principal = {
  id: 'system:serviceaccount:tenant-b:worker',
  authMethod: 'jwt',
  claims: { sub: 'system:serviceaccount:tenant-b:worker', 'kubernetes.io': { namespace: 'tenant-b', serviceaccount: { name: 'worker' } } },
};

// A JWT whose subject is an API key's name: a different caller, with none of the key's rights.
const jwtNamedBilling: Principal = { id: 'billing-service', authMethod: 'jwt', claims: { sub: 'billing-service', tenant: 'tenant-a' } };

async function principal(token: string): Promise<Principal> {
  return loaded.authenticator.authenticate(`Bearer ${token}`);
}

describe('examples/policy.yaml', () => {
  it('is embedded verbatim in docs/POLICY.md', async () => {
    const [example, doc] = await Promise.all([readFile(examplePath, 'utf8'), readFile(docPath, 'utf8')]);
    expect(doc).toContain('```yaml\n' + example + '```');
  });

  it('loads, with the demo tokens documented in it', async () => {
    expect(loaded.summary).toEqual({ rules: 4, apiKeys: 3, jwt: 'file' });
    expect((await principal('demo-tenant-a-billing-token')).id).toBe('billing-service');
    expect((await principal('demo-tenant-b-reports-token')).id).toBe('reports-service');
    expect((await principal('demo-ops-rotation-token')).id).toBe('ops-rotation');
  });

  const billing = { tenant: 'tenant-a', purpose: 'billing' };
  const rows: [who: string, request: DecisionRequest, expected: string | false][] = [
    ['billing-service', { operation: 'encrypt', keyNames: ['alias/tenant-a'], context: billing, plaintextBytes: 1024 }, 'tenant-a-billing'],
    ['billing-service', { operation: 'encrypt', keyNames: ['alias/tenant-a'], context: { ...billing, tenant: 'tenant-b' } }, false],
    ['billing-service', { operation: 'encrypt', keyNames: ['alias/tenant-a'], context: { ...billing, purpose: 'marketing' } }, false],
    ['billing-service', { operation: 'encrypt', keyNames: ['alias/tenant-a'], context: { ...billing, user: '42' } }, false],
    ['billing-service', { operation: 'encrypt', keyNames: ['alias/tenant-a'], context: billing, plaintextBytes: 100 * 1024 }, false],
    ['billing-service', { operation: 'encrypt', keyNames: ['alias/tenant-b'], context: billing }, false],
    ['billing-service', { operation: 'datakey:plaintext', keyNames: ['alias/tenant-a'], context: billing }, false],
    ['billing-service', { operation: 'datakey', keyNames: ['alias/tenant-a'], context: billing }, 'tenant-a-billing'],
    ['reports-service', { operation: 'encrypt', keyNames: ['alias/tenant-b'], context: { tenant: 'tenant-b', purpose: 'q3-report' } }, 'tenant-b-reports'],
    ['reports-service', { operation: 'encrypt', keyNames: ['alias/tenant-b'], context: { tenant: 'tenant-b' } }, false],
    ['k8s', { operation: 'datakey:plaintext', keyNames: ['alias/tenant-b'], context: { tenant: 'tenant-b' } }, 'tenant-b-k8s-workers'],
    ['k8s', { operation: 'decrypt', keyNames: ['alias/tenant-b'], context: { tenant: 'tenant-b', purpose: 'x' } }, 'tenant-b-k8s-workers'],
    ['k8s', { operation: 'decrypt', keyNames: ['alias/tenant-b'], context: { tenant: 'tenant-a' } }, false],
    ['k8s', { operation: 'encrypt', keyNames: ['alias/tenant-b'], context: { tenant: 'tenant-b' } }, false],
    ['ops-rotation', { operation: 'rewrap', keyNames: ['arn:aws:kms:eu-west-1:1:key/a', 'alias/tenant-a'], context: billing }, 'ops-rewrap'],
    ['ops-rotation', { operation: 'rewrap', keyNames: ['alias/tenant-b/2025'], context: { tenant: 'tenant-b' } }, 'ops-rewrap'],
    ['ops-rotation', { operation: 'rewrap', keyNames: ['alias/tenant-b/2025'], context: {} }, false],
    ['jwt billing-service', { operation: 'encrypt', keyNames: ['alias/tenant-a'], context: billing }, false],
    ['ops-rotation', { operation: 'decrypt', keyNames: ['alias/tenant-a'], context: billing }, false],
  ];
  const tokens: Record<string, string> = {
    'billing-service': 'demo-tenant-a-billing-token',
    'reports-service': 'demo-tenant-b-reports-token',
    'ops-rotation': 'demo-ops-rotation-token',
  };

  it.each(rows)('%s %j -> %s', async (who, request, expected) => {
    const caller = who === 'k8s' ? k8sWorker : who === 'jwt billing-service' ? jwtNamedBilling : await principal(tokens[who] ?? '');
    const decision = loaded.policy.decide(caller, request);
    expect(decision).toEqual(expected === false ? { allowed: false, reason: expect.any(String) } : { allowed: true, ruleId: expected });
  });

  it('ops may rewrap a tenant\'s ciphertext within that tenant\'s keys only', async () => {
    const ops = await principal('demo-ops-rotation-token');
    const fromA = (destination: string) =>
      loaded.policy.decideRewrapDestination(ops, { sourceKeyNames: ['alias/tenant-a'], destinationKeyNames: [destination], context: billing });
    expect(fromA('alias/tenant-a/2025')).toEqual({ allowed: true, ruleId: 'ops-rewrap' });
    expect(fromA('alias/tenant-b').allowed).toBe(false);
    expect(fromA('alias/tenant-b/2025').allowed).toBe(false);
  });

  it('GET /v1/keys view for tenant A', async () => {
    const grants = loaded.policy.listGrants(await principal('demo-tenant-a-billing-token'));
    expect(operationsForKey(grants, ['alias/tenant-a'])).toEqual(['encrypt', 'decrypt', 'datakey']);
    expect(operationsForKey(grants, ['alias/tenant-b'])).toEqual([]);
  });
});
