/**
 * JWT authentication against keys generated here: a JWKS file (createLocalJWKSet) and the
 * same JWKS served by a tiny HTTP server on 127.0.0.1 (createRemoteJWKSet).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthenticationError, AuthenticationUnavailableError, PolicyError } from '../../src/authz/errors.js';
import { loadPolicyFile } from '../../src/authz/policy-load.js';
import { type Authenticator } from '../../src/authz/authenticator.js';

const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const AUDIENCE = 'envelope-service';
const SUB = 'system:serviceaccount:tenant-b:worker';

interface SigningKey {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  jwk: JWK;
  alg: string;
  kid: string;
}

async function signingKey(alg: 'RS256' | 'ES256', kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }, alg, kid };
}

const now = () => Math.floor(Date.now() / 1000);

function sign(key: SigningKey, claims: JWTPayload = {}, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({
    iss: ISSUER,
    aud: AUDIENCE,
    sub: SUB,
    iat: now(),
    exp: now() + 600,
    'kubernetes.io': { namespace: 'tenant-b', serviceaccount: { name: 'worker' } },
    ...claims,
  })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...header })
    .sign(key.privateKey);
}

function policyYaml(jwksLine: string, algorithms = '[RS256, ES256]'): string {
  return [
    'version: 1',
    'authentication:',
    '  jwt:',
    `    issuer: ${ISSUER}`,
    `    audience: ${AUDIENCE}`,
    `    ${jwksLine}`,
    `    algorithms: ${algorithms}`,
    'rules: []',
  ].join('\n');
}

let dir: string;
let rsa: SigningKey;
let ec: SigningKey;
let stranger: SigningKey; // not in the JWKS
let fileAuth: Authenticator;

async function authFor(yaml: string, name = 'policy.yaml'): Promise<Authenticator> {
  const file = join(dir, name);
  await writeFile(file, yaml);
  return (await loadPolicyFile(file)).authenticator;
}

async function reason(auth: Authenticator, token: string): Promise<string> {
  const error = await auth.authenticate(`Bearer ${token}`).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(AuthenticationError);
  expect((error as Error).message).not.toContain(token);
  expect((error as AuthenticationError).authMethod).toBe('jwt');
  return (error as AuthenticationError).reason;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'authz-jwt-'));
  [rsa, ec, stranger] = await Promise.all([signingKey('RS256', 'rsa-1'), signingKey('ES256', 'ec-1'), signingKey('RS256', 'rsa-unknown')]);
  await writeFile(join(dir, 'jwks.json'), JSON.stringify({ keys: [rsa.jwk, ec.jwk] }));
  fileAuth = await authFor(policyYaml('jwksFile: jwks.json'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('JWT from a JWKS file', () => {
  it('accepts a valid RS256 token: principal = sub, claims = verified payload', async () => {
    const principal = await fileAuth.authenticate(`Bearer ${await sign(rsa)}`);
    expect(principal.id).toBe(SUB);
    expect(principal.authMethod).toBe('jwt');
    expect(principal.claims['kubernetes.io']).toEqual({ namespace: 'tenant-b', serviceaccount: { name: 'worker' } });
  });

  it('accepts a valid ES256 token', async () => {
    expect((await fileAuth.authenticate(`Bearer ${await sign(ec)}`)).id).toBe(SUB);
  });

  it('refuses an expired token', async () => {
    expect(await reason(fileAuth, await sign(rsa, { iat: now() - 3600, exp: now() - 60 }))).toBe('jwt_expired');
  });

  it('tolerates small clock skew (5 s default)', async () => {
    expect((await fileAuth.authenticate(`Bearer ${await sign(rsa, { exp: now() - 2 })}`)).id).toBe(SUB);
  });

  it('refuses a token that is not yet valid', async () => {
    expect(await reason(fileAuth, await sign(rsa, { nbf: now() + 120 }))).toBe('jwt_not_yet_valid');
  });

  it('refuses a token without exp', async () => {
    const token = await new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: SUB }).setProtectedHeader({ alg: 'RS256', kid: 'rsa-1' }).sign(rsa.privateKey);
    expect(await reason(fileAuth, token)).toBe('jwt_claim_invalid');
  });

  it('refuses the wrong issuer', async () => {
    expect(await reason(fileAuth, await sign(rsa, { iss: 'https://evil.example' }))).toBe('jwt_claim_invalid');
  });

  it('refuses the wrong audience', async () => {
    expect(await reason(fileAuth, await sign(rsa, { aud: 'another-service' }))).toBe('jwt_claim_invalid');
  });

  it('refuses a token without a usable principal claim', async () => {
    expect(await reason(fileAuth, await sign(rsa, { sub: undefined }))).toBe('jwt_claim_invalid');
    expect(await reason(fileAuth, await sign(rsa, { sub: '' }))).toBe('jwt_principal_claim_missing');
  });

  it('refuses an unknown kid', async () => {
    expect(await reason(fileAuth, await sign(stranger))).toBe('jwt_unknown_key');
  });

  it('refuses a token signed by another key under a known kid', async () => {
    expect(await reason(fileAuth, await sign({ ...stranger, kid: 'rsa-1' }))).toBe('jwt_signature_invalid');
  });

  it('refuses a tampered signature', async () => {
    const token = await sign(rsa);
    const [header, payload, signature = ''] = token.split('.');
    const middle = Math.floor(signature.length / 2);
    const flipped = signature.slice(0, middle) + (signature[middle] === 'A' ? 'B' : 'A') + signature.slice(middle + 1);
    expect(await reason(fileAuth, `${header}.${payload}.${flipped}`)).toBe('jwt_signature_invalid');
  });

  it('refuses a tampered payload (sub swapped to another tenant)', async () => {
    const token = await sign(rsa);
    const [header, , signature] = token.split('.');
    const forged = Buffer.from(
      JSON.stringify({ iss: ISSUER, aud: AUDIENCE, sub: 'system:serviceaccount:tenant-a:worker', exp: now() + 600 }),
    ).toString('base64url');
    expect(await reason(fileAuth, `${header}.${forged}.${signature}`)).toBe('jwt_signature_invalid');
  });

  it('refuses alg: none (hand-crafted, unsigned)', async () => {
    const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const unsigned = `${part({ alg: 'none', typ: 'JWT' })}.${part({ iss: ISSUER, aud: AUDIENCE, sub: SUB, exp: now() + 600 })}.`;
    expect(await reason(fileAuth, unsigned)).toBe('jwt_algorithm_not_allowed');
  });

  it('refuses HS256 signed with the public key as the HMAC secret (algorithm confusion)', async () => {
    for (const secret of [
      new TextEncoder().encode(await exportSPKI(rsa.publicKey)), // the PEM, as classic attacks do
      new TextEncoder().encode(JSON.stringify(rsa.jwk)),
      Buffer.from(rsa.jwk.n ?? '', 'base64url'),
    ]) {
      const token = await new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: SUB, exp: now() + 600 })
        .setProtectedHeader({ alg: 'HS256', kid: 'rsa-1' })
        .sign(secret);
      expect(await reason(fileAuth, token)).toBe('jwt_algorithm_not_allowed');
    }
  });

  it('refuses a valid signature whose algorithm is not in the allow-list', async () => {
    const rsaOnly = await authFor(policyYaml('jwksFile: jwks.json', '[RS256]'), 'rsa-only.yaml');
    expect(await reason(rsaOnly, await sign(ec))).toBe('jwt_algorithm_not_allowed');
    expect((await rsaOnly.authenticate(`Bearer ${await sign(rsa)}`)).id).toBe(SUB);
  });

  it('uses principalClaim when configured', async () => {
    const auth = await authFor(policyYaml('jwksFile: jwks.json').replace('    algorithms:', '    principalClaim: client_id\n    algorithms:'), 'client-id.yaml');
    expect((await auth.authenticate(`Bearer ${await sign(rsa, { client_id: 'ci-pipeline' })}`)).id).toBe('ci-pipeline');
    expect(await reason(auth, await sign(rsa))).toBe('jwt_claim_invalid'); // no client_id claim
    expect(await reason(auth, await sign(rsa, { client_id: 42 }))).toBe('jwt_principal_claim_missing');
  });

  it('refuses a token that lives longer than maxTokenAgeSeconds (default 24 h), even while fresh', async () => {
    const century = 100 * 365 * 24 * 3600;
    expect(await reason(fileAuth, await sign(rsa, { exp: now() + century }))).toBe('jwt_lifetime_too_long');
    expect(await reason(fileAuth, await sign(rsa, { exp: now() + 25 * 3600 }))).toBe('jwt_lifetime_too_long');
    expect((await fileAuth.authenticate(`Bearer ${await sign(rsa, { exp: now() + 23 * 3600 })}`)).id).toBe(SUB);
  });

  it('requires iat, and refuses one in the future (a lifetime shifted a century ahead)', async () => {
    expect(await reason(fileAuth, await sign(rsa, { iat: undefined }))).toBe('jwt_claim_invalid');
    const later = now() + 100 * 365 * 24 * 3600;
    expect(await reason(fileAuth, await sign(rsa, { iat: later, exp: later + 600 }))).toBe('jwt_claim_invalid');
  });

  it('applies a configured maxTokenAgeSeconds to lifetime and age', async () => {
    const auth = await authFor(policyYaml('jwksFile: jwks.json').replace('    algorithms:', '    maxTokenAgeSeconds: 3600\n    algorithms:'), 'max-age.yaml');
    expect((await auth.authenticate(`Bearer ${await sign(rsa, { exp: now() + 3000 })}`)).id).toBe(SUB);
    expect(await reason(auth, await sign(rsa, { exp: now() + 7200 }))).toBe('jwt_lifetime_too_long');
    expect(await reason(auth, await sign(rsa, { iat: now() - 4000, exp: now() + 600 }))).toBe('jwt_too_old');
  });

  it('refuses a maxTokenAgeSeconds above 7 days at load', async () => {
    const file = join(dir, 'max-age-too-long.yaml');
    await writeFile(file, policyYaml('jwksFile: jwks.json').replace('    algorithms:', '    maxTokenAgeSeconds: 2592000\n    algorithms:'));
    const error = await loadPolicyFile(file).catch((e: unknown) => e);
    expect((error as PolicyError).issues).toEqual([expect.objectContaining({ line: 7, field: 'authentication.jwt.maxTokenAgeSeconds' })]);
  });

  it.each(['HS256', 'HS384', 'none'])('refuses %s in the allow-list at load', async (alg) => {
    const file = join(dir, `bad-${alg}.yaml`);
    await writeFile(file, policyYaml('jwksFile: jwks.json', `[${alg}]`));
    const error = await loadPolicyFile(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PolicyError);
    expect((error as PolicyError).issues[0]).toMatchObject({ line: 7, field: 'authentication.jwt.algorithms[0]' });
  });
});

describe('JWT from a JWKS URL', () => {
  let server: Server;
  let url: string;
  let fetches = 0;
  let status = 200;

  beforeAll(async () => {
    server = createServer((req, res) => {
      fetches++;
      if (req.url !== '/openid/v1/jwks' || status !== 200) {
        res.writeHead(status === 200 ? 404 : status).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [rsa.jwk, ec.jwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/openid/v1/jwks`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('fetches the keys once and caches them', async () => {
    const auth = await authFor(policyYaml(`jwksUrl: ${url}`), 'remote.yaml');
    fetches = 0;
    expect((await auth.authenticate(`Bearer ${await sign(rsa)}`)).id).toBe(SUB);
    expect((await auth.authenticate(`Bearer ${await sign(ec)}`)).id).toBe(SUB);
    expect(fetches).toBe(1);
  });

  it('refuses an unknown kid without hammering the JWKS endpoint (cooldown)', async () => {
    const auth = await authFor(policyYaml(`jwksUrl: ${url}`), 'remote-cooldown.yaml');
    await auth.authenticate(`Bearer ${await sign(rsa)}`);
    fetches = 0;
    for (let i = 0; i < 5; i++) expect(await reason(auth, await sign(stranger))).toBe('jwt_unknown_key');
    expect(fetches).toBe(0);
  });

  it('refuses expired, wrong-audience and alg-none tokens as with a file', async () => {
    const auth = await authFor(policyYaml(`jwksUrl: ${url}`), 'remote-claims.yaml');
    expect(await reason(auth, await sign(rsa, { exp: now() - 60 }))).toBe('jwt_expired');
    expect(await reason(auth, await sign(rsa, { aud: 'other' }))).toBe('jwt_claim_invalid');
    const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    expect(await reason(auth, `${part({ alg: 'none' })}.${part({ iss: ISSUER, aud: AUDIENCE, sub: SUB, exp: now() + 60 })}.`)).toBe(
      'jwt_algorithm_not_allowed',
    );
  });

  it('an unreachable or failing JWKS endpoint is "unavailable" (503), not a bad token', async () => {
    status = 500;
    try {
      const auth = await authFor(policyYaml(`jwksUrl: ${url}`), 'remote-down.yaml');
      const error = await auth.authenticate(`Bearer ${await sign(rsa)}`).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AuthenticationUnavailableError);
    } finally {
      status = 200;
    }
    const closed = await authFor(policyYaml('jwksUrl: http://127.0.0.1:1/jwks'), 'remote-closed.yaml');
    const error = await closed.authenticate(`Bearer ${await sign(rsa)}`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AuthenticationUnavailableError);
  });

  it('refuses plain http to a non-loopback host at load', async () => {
    const file = join(dir, 'remote-http.yaml');
    await writeFile(file, policyYaml('jwksUrl: http://issuer.example/jwks'));
    await expect(loadPolicyFile(file)).rejects.toBeInstanceOf(PolicyError);
  });
});
