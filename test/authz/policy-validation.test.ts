/**
 * Invalid policy files are refused with file, line, column and field, so the operator can go
 * straight to the mistake.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PolicyError } from '../../src/authz/errors.js';
import { loadPolicyFile } from '../../src/authz/policy-load.js';
import { validatePolicyText } from '../../src/authz/policy-validate.js';

const HASH = 'a'.repeat(64);
const header = ['version: 1', 'authentication:', '  apiKeys:', '    - name: svc', `      sha256: "${HASH}"`];

/** Validates YAML lines; returns the PolicyError (fails the test if the text is valid). */
function errorOf(lines: string[], file = 'policy.yaml'): PolicyError {
  try {
    validatePolicyText(lines.join('\n'), file);
  } catch (error) {
    if (error instanceof PolicyError) return error;
    throw error;
  }
  throw new Error('expected a PolicyError');
}

describe('policy validation errors name file, line and field', () => {
  it('unknown operation in a fixture file (line 15)', async () => {
    const file = fileURLToPath(new URL('../fixtures/policy/invalid-operation.yaml', import.meta.url));
    const error = await loadPolicyFile(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PolicyError);
    const policyError = error as PolicyError;
    expect(policyError.issues).toEqual([
      expect.objectContaining({ line: 15, column: 9, field: 'rules[1].operations[1]', message: expect.stringContaining('unknown operation "encrpyt"') }),
    ]);
    expect(policyError.message).toContain(`${file}:15:9: rules[1].operations[1]: unknown operation "encrpyt"; allowed: encrypt, decrypt, rewrap, datakey, datakey:plaintext`);
  });

  it('unknown field points at the key (typo of an optional constraint)', () => {
    const error = errorOf([
      ...header,
      'rules:',
      '  - id: r1',
      '    principals: [svc]',
      '    operations: [encrypt]',
      '    keys: [alias/a]',
      '    maxPlaintextByte: 10',
    ]);
    expect(error.issues).toEqual([{ line: 11, column: 5, field: 'rules[0].maxPlaintextByte', message: 'unknown field "maxPlaintextByte"' }]);
  });

  it('missing required field points at the object that lacks it', () => {
    const error = errorOf([...header, 'rules:', '  - id: r1', '    principals: [svc]', '    keys: [alias/a]']);
    expect(error.issues).toEqual([{ line: 7, column: 5, field: 'rules[0].operations', message: 'required field is missing' }]);
  });

  it('wrong version, wrong types, bad hash — all reported at once', () => {
    const error = errorOf([
      'version: 2',
      'authentication:',
      '  apiKeys:',
      '    - name: svc',
      '      sha256: "my-secret-token"',
      'rules:',
      '  - id: r1',
      '    principals: svc',
      '    operations: [encrypt]',
      '    keys: [alias/a]',
      '    maxPlaintextBytes: -1',
    ]);
    const byField = Object.fromEntries(error.issues.map((issue) => [issue.field, issue]));
    expect(byField['version']).toMatchObject({ line: 1, message: 'must be 1' });
    expect(byField['authentication.apiKeys[0].sha256']).toMatchObject({ line: 5, message: expect.stringContaining('64 hex characters') });
    expect(byField['rules[0].principals']).toMatchObject({ line: 8 });
    expect(byField['rules[0].maxPlaintextBytes']).toMatchObject({ line: 11 });
    // A pasted token must not be echoed back into logs.
    expect(error.message).not.toContain('my-secret-token');
  });

  it.each(['HS256', 'HS512', 'none'])('refuses %s in the JWT algorithm allow-list', (alg) => {
    const error = errorOf([
      'version: 1',
      'authentication:',
      '  jwt:',
      '    issuer: https://issuer.example',
      '    audience: envelope-service',
      '    jwksUrl: https://issuer.example/jwks',
      `    algorithms: [RS256, ${alg}]`,
      'rules: []',
    ]);
    expect(error.issues).toEqual([
      expect.objectContaining({ line: 7, field: 'authentication.jwt.algorithms[1]', message: expect.stringContaining('only asymmetric algorithms are allowed') }),
    ]);
  });

  it('jwt needs exactly one of jwksFile and jwksUrl, and https', () => {
    const both = errorOf([
      'version: 1',
      'authentication:',
      '  jwt:',
      '    issuer: i',
      '    audience: a',
      '    jwksFile: jwks.json',
      '    jwksUrl: http://issuer.example/jwks',
      '    algorithms: [RS256]',
      'rules: []',
    ]);
    expect(both.issues.map((i) => [i.line, i.field, i.message])).toEqual([
      [4, 'authentication.jwt', 'exactly one of jwksFile and jwksUrl is required'],
      [7, 'authentication.jwt.jwksUrl', 'must be an https:// URL (http:// only to localhost)'],
    ]);
  });

  it('cross-field checks: duplicate rule ids, duplicate hashes, equals/fromClaims conflict, bad pointer, no authentication', () => {
    const error = errorOf([
      'version: 1',
      'authentication:',
      '  apiKeys:',
      `    - { name: a, sha256: "${HASH}" }`,
      `    - { name: b, sha256: "${HASH.toUpperCase()}" }`,
      'rules:',
      '  - id: r',
      '    principals: [a]',
      '    operations: [encrypt]',
      '    keys: [k]',
      '    context:',
      '      equals: { tenant: x }',
      '      fromClaims: { tenant: tenant, ns: "/bad~2pointer" }',
      '  - id: r',
      '    principals: [a]',
      '    operations: [encrypt]',
      '    keys: [k]',
    ]);
    expect(error.issues.map((i) => [i.line, i.field])).toEqual([
      [5, 'authentication.apiKeys[1].sha256'],
      [13, 'rules[0].context.fromClaims.tenant'],
      [13, 'rules[0].context.fromClaims.ns'],
      [14, 'rules[1].id'],
    ]);
    const none = errorOf(['version: 1', 'authentication: {}', 'rules: []']);
    expect(none.issues[0]).toMatchObject({ line: 2, field: 'authentication', message: expect.stringContaining('no way to authenticate') });
  });

  it('tenants: a bad tenant name on a key or a rule, and a bad tenantClaim pointer, each at its line and column', () => {
    const error = errorOf([
      'version: 1',
      'authentication:',
      '  apiKeys:',
      '    - name: svc',
      `      sha256: "${HASH}"`,
      '      tenant: "tenant b"',
      '  jwt: { issuer: i, audience: a, jwksFile: j.json, algorithms: [RS256], tenantClaim: "/a~2b" }',
      'rules:',
      '  - id: r1',
      '    authMethods: [jwt]',
      '    tenant: ""',
      '    principals: [svc]',
      '    operations: [encrypt]',
      '    keys: [alias/a]',
    ]);
    const name = 'a tenant name must be 1-128 characters: letters, digits and . _ : / - (starting with a letter or digit)';
    expect(error.issues).toEqual([
      { line: 6, column: 15, field: 'authentication.apiKeys[0].tenant', message: name },
      { line: 11, column: 13, field: 'rules[0].tenant', message: name },
    ]);
    const pointer = errorOf([
      ...header,
      '  jwt: { issuer: i, audience: a, jwksFile: j.json, algorithms: [RS256], tenantClaim: "/a~2b" }',
      'rules: []',
    ]);
    expect(pointer.issues).toEqual([
      { line: 6, column: 86, field: 'authentication.jwt.tenantClaim', message: 'must be a claim name or a JSON Pointer such as /kubernetes.io/namespace' },
    ]);
  });

  it('YAML syntax errors and duplicate keys carry their position', () => {
    const syntax = errorOf(['version: 1', 'rules: [unclosed']);
    expect(syntax.issues[0]?.line).toBeGreaterThanOrEqual(2);
    expect(syntax.issues[0]?.message).toMatch(/^YAML: /);
    const duplicate = errorOf(['version: 1', 'version: 1']);
    expect(duplicate.issues[0]).toMatchObject({ line: 2, message: expect.stringContaining('YAML') });
  });

  it('non-mapping documents are refused', () => {
    expect(errorOf(['- just', '- a list']).issues[0]?.field).toBe('');
  });
});

describe('loading from disk', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'authz-policy-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a missing file is a PolicyError naming it', async () => {
    const file = join(dir, 'nope.yaml');
    const error = await loadPolicyFile(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PolicyError);
    expect((error as Error).message).toContain(file);
    expect((error as Error).message).toContain('ENOENT');
  });

  it('jwksFile resolves against the policy file\'s directory; problems point at the jwksFile line', async () => {
    const policy = [
      'version: 1',
      'authentication:',
      '  jwt:',
      '    issuer: i',
      '    audience: a',
      '    jwksFile: keys/jwks.json',
      '    algorithms: [ES256]',
      'rules: []',
    ].join('\n');
    const file = join(dir, 'policy.yaml');
    await writeFile(file, policy);
    const missing = (await loadPolicyFile(file).catch((e: unknown) => e)) as PolicyError;
    expect(missing.issues[0]).toMatchObject({ line: 6, field: 'authentication.jwt.jwksFile', message: expect.stringContaining('keys/jwks.json: cannot be read (ENOENT)') });

    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(dir, 'keys'));
    await writeFile(join(dir, 'keys/jwks.json'), JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0' }] }));
    const symmetric = (await loadPolicyFile(file).catch((e: unknown) => e)) as PolicyError;
    expect(symmetric.issues[0]?.message).toContain('symmetric keys are refused');

    const { generateKeyPairSync } = await import('node:crypto');
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await writeFile(join(dir, 'keys/jwks.json'), JSON.stringify({ keys: [privateKey.export({ format: 'jwk' })] }));
    const privateMaterial = (await loadPolicyFile(file).catch((e: unknown) => e)) as PolicyError;
    expect(privateMaterial.issues[0]?.message).toContain('private key material');

    await writeFile(join(dir, 'keys/jwks.json'), JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'k1' }] }));
    const loaded = await loadPolicyFile(file);
    expect(loaded.summary).toEqual({ rules: 0, apiKeys: 0, jwt: 'file' });
  });
});
