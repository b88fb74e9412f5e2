/**
 * The policy enforced over HTTP with the documented example policy (examples/policy.yaml and
 * its demo tokens), on both providers: allowed and denied by key, by context constraint and by
 * claim binding; tenant A's data stays tenant A's even when its data key is cached.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalKeyProvider } from '../../src/kms/local.js';
import { buildTestApp, describeProviders, type TestApp } from '../helpers/app.js';

const POLICY = new URL('../../examples/policy.yaml', import.meta.url).pathname;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const TENANT_A = bearer('demo-tenant-a-billing-token');
const TENANT_B = bearer('demo-tenant-b-reports-token');
const OPS = bearer('demo-ops-rotation-token');
const A_CONTEXT = { tenant: 'tenant-a', purpose: 'billing' };
const B_CONTEXT = { tenant: 'tenant-b', purpose: 'monthly' };
const HELLO = Buffer.from('hello').toString('base64');

async function seedTenantAliases(t: TestApp): Promise<void> {
  if (!(t.provider instanceof LocalKeyProvider)) return; // local-kms is seeded with them
  for (const alias of ['alias/tenant-a', 'alias/tenant-b']) {
    const key = await t.provider.createKey();
    await t.provider.createAlias(alias, key.keyId);
  }
}

describeProviders('authorization with the example policy on the %s provider', (kind) => {
  let t: TestApp;
  const post = (path: string, auth: Record<string, string>, body: object) => request(t.app.server).post(path).set(auth).send(body);

  beforeAll(async () => {
    t = await buildTestApp({ provider: kind, policyFile: POLICY });
    await seedTenantAliases(t);
  });
  afterAll(async () => t?.close());

  function expectDenied(response: request.Response) {
    expect(response.status).toBe(403);
    expect(response.body.code).toBe('AccessDenied');
    // No hint of which constraint failed or what exists.
    expect(response.body.detail).toBe('the policy does not allow this request');
  }

  it('encrypt: allowed on its own key with its own context', async () => {
    const response = await post('/v1/encrypt', TENANT_A, { plaintext: HELLO, keyId: 'alias/tenant-a', context: A_CONTEXT });
    expect(response.status).toBe(200);
  });

  it('encrypt: denied by key', async () => {
    expectDenied(await post('/v1/encrypt', TENANT_A, { plaintext: HELLO, keyId: 'alias/tenant-b', context: A_CONTEXT }));
    expectDenied(await post('/v1/encrypt', TENANT_A, { plaintext: HELLO, context: A_CONTEXT })); // default key not granted
  });

  it('encrypt: denied by a fixed context value, a missing key, and an unnamed key', async () => {
    expectDenied(await post('/v1/encrypt', TENANT_A, { plaintext: HELLO, keyId: 'alias/tenant-a', context: { ...A_CONTEXT, purpose: 'marketing' } }));
    expectDenied(await post('/v1/encrypt', TENANT_A, { plaintext: HELLO, keyId: 'alias/tenant-a', context: { tenant: 'tenant-a' } }));
    expectDenied(await post('/v1/encrypt', TENANT_A, { plaintext: HELLO, keyId: 'alias/tenant-a', context: { ...A_CONTEXT, extra: '1' } }));
  });

  it('encrypt: denied by claim binding (tenant A claiming tenant B)', async () => {
    expectDenied(await post('/v1/encrypt', TENANT_A, { plaintext: HELLO, keyId: 'alias/tenant-a', context: { ...A_CONTEXT, tenant: 'tenant-b' } }));
  });

  it('encrypt: denied above maxPlaintextBytes', async () => {
    const big = Buffer.alloc(65_537, 1).toString('base64');
    expectDenied(await post('/v1/encrypt', TENANT_A, { plaintext: big, keyId: 'alias/tenant-a', context: A_CONTEXT }));
  });

  it('an unknown key: 403 for a caller with no grant that could match, 404 for one whose grant matches the name', async () => {
    expectDenied(await post('/v1/encrypt', TENANT_B, { plaintext: HELLO, keyId: 'alias/nope', context: B_CONTEXT }));
    const notFound = await post('/v1/encrypt', TENANT_A, { plaintext: HELLO, keyId: 'alias/tenant-a/nope', context: A_CONTEXT });
    expect(notFound.status).toBe(404);
  });

  it('decrypt: tenant B cannot decrypt tenant A\'s ciphertext, even with A\'s data key cached', async () => {
    const { body } = await post('/v1/encrypt', TENANT_A, { plaintext: HELLO, keyId: 'alias/tenant-a', context: A_CONTEXT });
    const own = await post('/v1/decrypt', TENANT_A, { ciphertext: body.ciphertext });
    expect(own.status).toBe(200); // now A's data key is in the decrypt cache
    expectDenied(await post('/v1/decrypt', TENANT_B, { ciphertext: body.ciphertext }));
    expectDenied(await post('/v1/decrypt', OPS, { ciphertext: body.ciphertext }));
  });

  it('decrypt is judged on the stored context, not on a context the caller claims', async () => {
    const { body } = await post('/v1/encrypt', TENANT_B, { plaintext: HELLO, keyId: 'alias/tenant-b', context: B_CONTEXT });
    expectDenied(await post('/v1/decrypt', TENANT_A, { ciphertext: body.ciphertext, context: A_CONTEXT }));
    expect((await post('/v1/decrypt', TENANT_B, { ciphertext: body.ciphertext })).status).toBe(200);
  });

  it('rewrap: ops may move tenant A\'s ciphertext within tenant A\'s keys; tenants may not rewrap; ops may not decrypt', async () => {
    const { body } = await post('/v1/encrypt', TENANT_A, { plaintext: HELLO, keyId: 'alias/tenant-a', context: A_CONTEXT });
    const rewrapped = await post('/v1/rewrap', OPS, { ciphertext: body.ciphertext, keyId: 'alias/tenant-a' });
    expect(rewrapped.status).toBe(200);
    expect((await post('/v1/decrypt', TENANT_A, { ciphertext: rewrapped.body.ciphertext })).body.plaintext).toBe(HELLO);
    expectDenied(await post('/v1/rewrap', TENANT_A, { ciphertext: body.ciphertext, keyId: 'alias/tenant-a' }));
    expectDenied(await post('/v1/encrypt', OPS, { plaintext: HELLO, keyId: 'alias/tenant-a', context: A_CONTEXT }));
  });

  it('rewrap: tenant A\'s ciphertext never moves under tenant B\'s key, though ops may rewrap under both', async () => {
    const { body } = await post('/v1/encrypt', TENANT_A, { plaintext: HELLO, keyId: 'alias/tenant-a', context: A_CONTEXT });
    expectDenied(await post('/v1/rewrap', OPS, { ciphertext: body.ciphertext, keyId: 'alias/tenant-b' }));
    const event = t.auditEvents().at(-1)!;
    expect(event).toMatchObject({ eventName: 'ReEncrypt', httpStatus: 403 });
    // Tenant B could not have opened it anyway; the point is that B's key never wraps A's data.
    expectDenied(await post('/v1/decrypt', TENANT_B, { ciphertext: body.ciphertext }));
  });

  it('datakey: wrapped allowed, plaintext refused without datakey:plaintext', async () => {
    const wrapped = await post('/v1/datakey', TENANT_A, { keyId: 'alias/tenant-a', context: A_CONTEXT });
    expect(wrapped.status).toBe(200);
    expect(wrapped.body.plaintextKey).toBeUndefined();
    expectDenied(await post('/v1/datakey', TENANT_A, { keyId: 'alias/tenant-a', context: A_CONTEXT, includePlaintext: true }));
  });

  it('GET /v1/keys lists only what the caller may use', async () => {
    const a = await request(t.app.server).get('/v1/keys').set(TENANT_A);
    expect(a.status).toBe(200);
    expect(a.body.keys).toHaveLength(1);
    expect(a.body.keys[0].aliases).toContain('alias/tenant-a');
    expect(a.body.keys[0].operations.sort()).toEqual(['datakey', 'decrypt', 'encrypt']);
    const ops = await request(t.app.server).get('/v1/keys').set(OPS);
    expect(ops.body.keys.map((key: { aliases: string[] }) => key.aliases[0]).sort()).toEqual(['alias/tenant-a', 'alias/tenant-b']);
    expect(ops.body.keys.every((key: { operations: string[] }) => key.operations.join() === 'rewrap')).toBe(true);
  });

  it('GET /v1/keys shows each rule\'s context constraints, claim bindings resolved to the caller\'s claims', async () => {
    const a = await request(t.app.server).get('/v1/keys').set(TENANT_A);
    expect(a.body.keys[0].grants).toEqual([
      {
        rule: 'tenant-a-billing',
        operations: ['encrypt', 'decrypt', 'datakey'],
        // fromClaims { tenant: tenant } resolved to billing-service's claim: tenant-a.
        context: { required: ['purpose', 'tenant'], equals: { purpose: 'billing', tenant: 'tenant-a' }, optional: [], allowOthers: false },
        maxPlaintextBytes: 65536,
      },
    ]);
    // What the listing says is a request the policy accepts.
    const context = a.body.keys[0].grants[0].context.equals as Record<string, string>;
    expect((await post('/v1/encrypt', TENANT_A, { plaintext: HELLO, keyId: a.body.keys[0].aliases[0], context })).status).toBe(200);

    const b = await request(t.app.server).get('/v1/keys').set(TENANT_B);
    expect(b.body.keys[0].grants).toEqual([
      {
        rule: 'tenant-b-reports',
        operations: ['encrypt', 'decrypt'],
        context: { required: ['purpose', 'tenant'], equals: { tenant: 'tenant-b' }, optional: [], allowOthers: false },
      },
    ]);
    const ops = await request(t.app.server).get('/v1/keys').set(OPS);
    for (const key of ops.body.keys) {
      expect(key.grants).toEqual([
        {
          rule: 'ops-rewrap',
          operations: ['rewrap'],
          context: { required: ['tenant'], equals: {}, optional: [], allowOthers: true },
          rewrapTo: ['alias/{context.tenant}', 'alias/{context.tenant}/*'],
        },
      ]);
    }
  });

  it('401 without a token, with a wrong one, or with another scheme', async () => {
    for (const headers of [{}, bearer('wrong-token'), { authorization: 'Basic ZGVtbzpkZW1v' }, { authorization: 'Bearer' }, bearer('dev-token')]) {
      const response = await request(t.app.server).post('/v1/encrypt').set(headers).send({ plaintext: HELLO });
      expect(response.status).toBe(401);
      expect(response.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(response.body.code).toBe('Unauthenticated');
    }
  });
});

describe('JWT bearer tokens over HTTP', () => {
  let t: TestApp;
  let policyFile: string;
  let privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  const issuer = 'https://issuer.test';
  const audience = 'envelope-service';

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256');
    privateKey = pair.privateKey;
    const dir = mkdtempSync(join(tmpdir(), 'jwt-policy-'));
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }] }));
    const deployer = createHash('sha256').update('ci-deployer-api-key').digest('hex');
    writeFileSync(
      join(dir, 'policy.yaml'),
      [
        'version: 1',
        'authentication:',
        `  apiKeys: [{ name: ci-deployer, sha256: "${deployer}" }]`,
        `  jwt: { issuer: "${issuer}", audience: ${audience}, jwksFile: jwks.json, algorithms: [RS256] }`,
        'rules:',
        '  - id: workers',
        '    authMethods: [jwt]',
        '    principals: ["system:serviceaccount:team:*"]',
        '    operations: [encrypt]',
        '    keys: ["*"]',
        '    context: { fromClaims: { team: team } }',
        '  - id: deployer',
        '    authMethods: [api-key]',
        '    principals: [ci-deployer]',
        '    operations: [encrypt]',
        '    keys: ["*"]',
        '    context: { allowOthers: true }',
      ].join('\n'),
    );
    policyFile = join(dir, 'policy.yaml');
    t = await buildTestApp({ policyFile });
  });
  afterAll(async () => t?.close());

  const token = (
    claims: Record<string, unknown>,
    options: { exp?: string | number; nbf?: string | number; iss?: string; aud?: string; sub?: string } = {},
  ) =>
    new SignJWT({ team: 'blue', ...claims })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .setSubject(options.sub ?? 'system:serviceaccount:team:worker')
      .setIssuer(options.iss ?? issuer)
      .setAudience(options.aud ?? audience)
      .setIssuedAt()
      .setExpirationTime(options.exp ?? '5m')
      .setNotBefore(options.nbf ?? '0s')
      .sign(privateKey);

  const encryptWith = async (jwt: string, context: Record<string, string> = { team: 'blue' }) =>
    request(t.app.server).post('/v1/encrypt').set(bearer(jwt)).send({ plaintext: HELLO, context });

  it('a valid token is authorized with its claims', async () => {
    expect((await encryptWith(await token({}))).status).toBe(200);
    expect((await encryptWith(await token({}), { team: 'red' })).status).toBe(403);
    const event = t.auditEvents().find((e) => e.httpStatus === 200)!;
    expect(event.userIdentity).toMatchObject({ type: 'jwt', principalId: 'system:serviceaccount:team:worker', ruleId: 'workers' });
  });

  it('a JWT whose subject is an API key\'s name is not that principal: 403, the key itself 200', async () => {
    expect((await request(t.app.server).post('/v1/encrypt').set(bearer('ci-deployer-api-key')).send({ plaintext: HELLO })).status).toBe(200);
    const impostor = await encryptWith(await token({}, { sub: 'ci-deployer' }), {});
    expect(impostor.status).toBe(403);
    expect(t.auditEvents().at(-1)!.userIdentity).toMatchObject({ type: 'jwt', principalId: 'ci-deployer' });
  });

  it('nor does it share, or drain, that API key\'s rate-limit bucket', async () => {
    const limited = await buildTestApp({ policyFile, env: { RATE_LIMIT_MAX: '2' } });
    try {
      const deployer = () => request(limited.app.server).post('/v1/encrypt').set(bearer('ci-deployer-api-key')).send({ plaintext: HELLO });
      expect((await deployer()).status).toBe(200);
      expect((await deployer()).status).toBe(200);
      expect((await deployer()).status).toBe(429);
      const impostor = await request(limited.app.server).post('/v1/encrypt').set(bearer(await token({}, { sub: 'ci-deployer' }))).send({ plaintext: HELLO, context: {} });
      expect(impostor.status).toBe(403);
    } finally {
      await limited.close();
    }
  });

  it('a 100-year token is refused: 401', async () => {
    expect((await encryptWith(await token({}, { exp: '100y' }))).status).toBe(401);
  });

  it('expired, not yet valid, wrong issuer, wrong audience, alg none, tampered: 401', async () => {
    const now = Math.floor(Date.now() / 1000);
    const valid = await token({});
    const [header, payload] = valid.split('.');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', kid: 'k1' })).toString('base64url')}.${payload}.`;
    const tampered = `${header}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), team: 'red' })).toString('base64url')}.${valid.split('.')[2]}`;
    for (const bad of [
      await token({}, { exp: now - 60 }),
      await token({}, { nbf: now + 600 }),
      await token({}, { iss: 'https://evil.test' }),
      await token({}, { aud: 'someone-else' }),
      none,
      tampered,
    ]) {
      const response = await encryptWith(bad);
      expect(response.status).toBe(401);
    }
  });
});
