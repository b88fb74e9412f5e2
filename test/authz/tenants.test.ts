/**
 * Who is in which tenant: an API key's `tenant`, a JWT's `tenantClaim`, else the first rule
 * applying to the principal that names one; else none (the principal alone). Resolved once, by
 * the policy's authenticator, and turned into the key every shared structure uses (tenantKey).
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicyFile, type LoadedPolicy } from '../../src/authz/policy-load.js';
import { principalKey, tenantKey } from '../../src/authz/principal-key.js';

const sha = (token: string) => createHash('sha256').update(token).digest('hex');
let dir: string;
let loaded: LoadedPolicy;
let sign: (claims: Record<string, unknown>, sub: string) => Promise<string>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'authz-tenants-'));
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  await writeFile(join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k' }] }));
  sign = (claims, sub) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'k' }).setIssuer('i').setAudience('a').setSubject(sub).setIssuedAt().setExpirationTime('5m').sign(privateKey);
  const file = join(dir, 'policy.yaml');
  await writeFile(
    file,
    [
      'version: 1',
      'authentication:',
      '  apiKeys:',
      `    - { name: billing, sha256: "${sha('t-billing')}", tenant: acme }`,
      `    - { name: batch, sha256: "${sha('t-batch')}" }`,
      `    - { name: loner, sha256: "${sha('t-loner')}" }`,
      '  jwt: { issuer: i, audience: a, jwksFile: jwks.json, algorithms: [ES256], tenantClaim: /kubernetes.io/namespace }',
      'rules:',
      '  - { id: batch-jobs, authMethods: [api-key], tenant: acme, principals: [batch, billing], operations: [encrypt], keys: [alias/a] }',
      '  - { id: ci, authMethods: [jwt], tenant: ci-runners, principals: ["ci-*"], operations: [encrypt], keys: [alias/a] }',
      '  - { id: loner, authMethods: [api-key], principals: [loner], operations: [encrypt], keys: [alias/a] }',
    ].join('\n'),
  );
  loaded = await loadPolicyFile(file);
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

const tenantOf = async (token: string) => tenantKey(await loaded.authenticator.authenticate(`Bearer ${token}`));

describe('tenants', () => {
  it("an API key's own tenant, or the first rule naming one; none: the principal alone", async () => {
    expect(await tenantOf('t-billing')).toBe('tenant:acme');
    expect(await tenantOf('t-batch')).toBe('tenant:acme');
    expect(await tenantOf('t-loner')).toBe('api-key:loner');
  });

  it("a JWT's tenant is its tenantClaim; without the claim, a rule's; else the subject alone, never the same-named API key", async () => {
    expect(await tenantOf(await sign({ 'kubernetes.io': { namespace: 'team-b' } }, 'system:serviceaccount:team-b:w1'))).toBe('tenant:team-b');
    expect(await tenantOf(await sign({ 'kubernetes.io': { namespace: 'team-b' } }, 'system:serviceaccount:team-b:w2'))).toBe('tenant:team-b');
    expect(await tenantOf(await sign({}, 'ci-42'))).toBe('tenant:ci-runners');
    expect(await tenantOf(await sign({ 'kubernetes.io': { namespace: '' } }, 'loner'))).toBe('jwt:loner');
  });

  it('principalKey stays the principal: two principals of one tenant are two callers', async () => {
    const billing = await loaded.authenticator.authenticate('Bearer t-billing');
    const batch = await loaded.authenticator.authenticate('Bearer t-batch');
    expect([principalKey(billing), principalKey(batch)]).toEqual(['api-key:billing', 'api-key:batch']);
    expect(tenantKey(billing)).toBe(tenantKey(batch));
  });
});
