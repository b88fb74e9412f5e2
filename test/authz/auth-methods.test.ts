/**
 * An API key named `billing` and a JWT whose subject is `billing` are different callers: a
 * rule applies only to the authentication methods it names (`authMethods`), and a file that
 * configures one method gives its rules that method by default.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PolicyError } from '../../src/authz/errors.js';
import { loadPolicyFile } from '../../src/authz/policy-load.js';
import { operationsForKey, type DecisionRequest } from '../../src/authz/policy.js';
import { type Principal } from '../../src/authz/principal.js';

const HASH = 'b'.repeat(64);
const apiKey: Principal = { id: 'billing', authMethod: 'api-key', claims: {} };
const jwtNamedLikeTheKey: Principal = { id: 'billing', authMethod: 'jwt', claims: { sub: 'billing' } };
const encrypt: DecisionRequest = { operation: 'encrypt', keyNames: ['alias/billing'], context: {} };
const rule = (extra: string[] = []) => ['  - id: billing-encrypt', ...extra, '    principals: [billing]', '    operations: [encrypt]', '    keys: [alias/billing]'];

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'authz-methods-'));
  const { publicKey } = await generateKeyPair('ES256');
  await writeFile(join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k' }] }));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function load(authentication: string[], rules: string[], name: string) {
  const file = join(dir, name);
  await writeFile(file, ['version: 1', 'authentication:', ...authentication, 'rules:', ...rules].join('\n'));
  return loadPolicyFile(file);
}

const API_KEYS = ['  apiKeys:', '    - name: billing', `      sha256: "${HASH}"`];
const JWT = ['  jwt: { issuer: i, audience: a, jwksFile: jwks.json, algorithms: [ES256] }'];

describe('principals of different authentication methods stay apart', () => {
  it('a file with API keys only: its rules are for API keys, a JWT with the same subject gets nothing', async () => {
    const { policy } = await load(API_KEYS, rule(), 'api-keys-only.yaml');
    expect(policy.decide(apiKey, encrypt)).toEqual({ allowed: true, ruleId: 'billing-encrypt' });
    expect(policy.decide(jwtNamedLikeTheKey, encrypt).allowed).toBe(false);
    expect(operationsForKey(policy.listGrants(jwtNamedLikeTheKey), ['alias/billing'])).toEqual([]);
  });

  it('a file with JWT only: its rules are for JWTs', async () => {
    const { policy } = await load(JWT, rule(), 'jwt-only.yaml');
    expect(policy.decide(jwtNamedLikeTheKey, encrypt).allowed).toBe(true);
    expect(policy.decide(apiKey, encrypt).allowed).toBe(false);
  });

  it('a file with both: each rule must say which, at its id line', async () => {
    const error = await load([...API_KEYS, ...JWT], rule(), 'both-unsaid.yaml').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PolicyError);
    expect((error as PolicyError).issues).toEqual([
      expect.objectContaining({ line: 8, field: 'rules[0].id', message: expect.stringContaining('authMethods: [api-key], [jwt] or [api-key, jwt]') }),
    ]);
  });

  it('a file with both: authMethods decides, and may name both on purpose', async () => {
    const apiOnly = (await load([...API_KEYS, ...JWT], rule(['    authMethods: [api-key]']), 'both-api.yaml')).policy;
    expect(apiOnly.decide(apiKey, encrypt).allowed).toBe(true);
    expect(apiOnly.decide(jwtNamedLikeTheKey, encrypt).allowed).toBe(false);
    const either = (await load([...API_KEYS, ...JWT], rule(['    authMethods: [api-key, jwt]']), 'both-either.yaml')).policy;
    expect(either.decide(apiKey, encrypt).allowed).toBe(true);
    expect(either.decide(jwtNamedLikeTheKey, encrypt).allowed).toBe(true);
  });

  it('refuses an unknown method', async () => {
    const error = await load(API_KEYS, rule(['    authMethods: [dev-token]']), 'unknown-method.yaml').catch((e: unknown) => e);
    expect((error as PolicyError).issues).toEqual([
      expect.objectContaining({ field: 'rules[0].authMethods[0]', message: 'unknown authentication method "dev-token"; allowed: api-key, jwt' }),
    ]);
  });
});
