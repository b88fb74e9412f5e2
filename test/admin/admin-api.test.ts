/**
 * The admin API (/v1/admin/...) over HTTP with a policy file: each operation allowed only with
 * its grant and audited either way; evict drops and zeroes cached data keys so that the next
 * encrypt calls KMS; a reload through the API with an invalid file keeps the policy in force
 * and answers its errors with line and column; and nothing an admin route answers holds key
 * material or a token.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decorateProvider } from '../../src/kms/decorate.js';
import type { KeyProvider } from '../../src/kms/provider.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';

const TOKENS = { app: 'app-token-0123456789', reader: 'reader-token-0123456789', ops: 'ops-token-0123456789' };
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const sha = (token: string) => createHash('sha256').update(token).digest('hex');
const HELLO = Buffer.from('hello').toString('base64');

const POLICY = `version: 1
authentication:
  apiKeys:
    - { name: app, sha256: "${sha(TOKENS.app)}" }
    - { name: reader, sha256: "${sha(TOKENS.reader)}" }
    - { name: ops, sha256: "${sha(TOKENS.ops)}" }
rules:
  - id: app-data
    principals: [app]
    operations: [encrypt, decrypt]
    keys: ["*"]
    context: { allowOthers: true }
  - id: admin-read
    principals: [reader, ops]
    operations: [admin:read]
    keys: ["*"]
  - id: admin-act
    principals: [ops]
    operations: [admin:cache, admin:policy]
    keys: ["*"]
`;

/** Every admin operation, the grant it needs, and a request it answers with 200. */
const OPERATIONS = [
  { name: 'GetCacheState', method: 'get', path: '/v1/admin/cache', grant: 'admin:read' },
  { name: 'GetPolicyState', method: 'get', path: '/v1/admin/policy', grant: 'admin:read' },
  { name: 'GetKmsState', method: 'get', path: '/v1/admin/kms', grant: 'admin:read' },
  { name: 'GetFleetState', method: 'get', path: '/v1/admin/fleet', grant: 'admin:read' },
  { name: 'EvictDataKeys', method: 'post', path: '/v1/admin/cache/evict', grant: 'admin:cache', body: { all: true } },
  { name: 'ReloadPolicy', method: 'post', path: '/v1/admin/policy/reload', grant: 'admin:policy' },
] as const;

describe('admin API', () => {
  let t: TestApp;
  let dir: string;
  let policyFile: string;
  /** Every plaintext data key KMS handed out, as the cache holds it (the same buffers). */
  const issuedKeys: Buffer[] = [];
  /** Their bytes, copied when issued (the buffers are zeroed on eviction). */
  const issuedKeyBytes: Buffer[] = [];
  const kmsCalls: Record<string, number> = {};
  /** Every admin response body, for the secrets scan. */
  const adminBodies: string[] = [];

  function capture(provider: KeyProvider): KeyProvider {
    const counted = decorateProvider(provider, (operation, call) => {
      kmsCalls[operation] = (kmsCalls[operation] ?? 0) + 1;
      return call();
    });
    return {
      ...counted,
      generateDataKey: async (keyId, context) => {
        const key = await counted.generateDataKey(keyId, context);
        issuedKeys.push(key.plaintextKey);
        issuedKeyBytes.push(Buffer.from(key.plaintextKey));
        return key;
      },
    };
  }

  const admin = async (token: string, method: 'get' | 'post', path: string, body?: object) => {
    const call = request(t.app.server)[method](path).set(bearer(token));
    const response = body === undefined ? await call : await call.send(body);
    adminBodies.push(response.text, JSON.stringify(response.headers));
    return response;
  };
  const encrypt = (context: Record<string, string> = {}) =>
    request(t.app.server).post('/v1/encrypt').set(bearer(TOKENS.app)).send({ plaintext: HELLO, context });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'admin-policy-'));
    policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, POLICY);
    t = await buildTestApp({ policyFile, wrapProvider: capture });
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function lastEvent(name: string): Record<string, any> {
    const event = t.auditEvents().filter((e) => e.eventName === name).at(-1);
    expect(event, `an audit event ${name}`).toBeDefined();
    return event as Record<string, any>;
  }

  describe.each(OPERATIONS)('$name', ({ name, method, path, grant, ...rest }) => {
    const body = 'body' in rest ? rest.body : undefined;

    it(`is denied without ${grant}, and audited`, async () => {
      const callers = grant === 'admin:read' ? [['app', TOKENS.app]] : [['app', TOKENS.app], ['reader', TOKENS.reader]];
      for (const [principal, token] of callers) {
        const response = await admin(token!, method, path, body);
        expect(response.status, response.text).toBe(403);
        expect(response.body.code).toBe('AccessDenied');
        expect(response.headers['cache-control']).toBe('no-store');
        const event = lastEvent(name);
        expect(event.userIdentity.principalId).toBe(principal);
        expect(event.httpStatus).toBe(403);
        expect(event.additionalEventData.decision).toBe('deny');
        expect(event.additionalEventData.denyReason).toContain(grant);
      }
    });

    it(`is allowed with ${grant}, and audited with the rule`, async () => {
      const response = await admin(TOKENS.ops, method, path, body);
      expect(response.status, response.text).toBe(200);
      expect(response.headers['cache-control']).toBe('no-store');
      const event = lastEvent(name);
      expect(event.userIdentity.principalId).toBe('ops');
      expect(event.httpStatus).toBe(200);
      expect(event.additionalEventData.decision).toBe('allow');
      expect(event.userIdentity.ruleId).toBe(grant === 'admin:read' ? 'admin-read' : 'admin-act');
    });
  });

  it('GET /v1/keys lists no key for an admin-only principal', async () => {
    const response = await request(t.app.server).get('/v1/keys').set(bearer(TOKENS.ops));
    expect(response.status).toBe(200);
    expect(response.body.keys).toEqual([]);
  });

  it('cache state counts entries per key and per principal, contexts only as counts', async () => {
    await admin(TOKENS.ops, 'post', '/v1/admin/cache/evict', { all: true });
    for (const tenant of ['acme-secret-tenant', 'globex']) expect((await encrypt({ tenant })).status).toBe(200);
    expect((await encrypt({ tenant: 'globex' })).status).toBe(200);
    const response = await admin(TOKENS.reader, 'get', '/v1/admin/cache');
    expect(response.status).toBe(200);
    const encryptCache = response.body.caches.find((c: { kind: string }) => c.kind === 'encrypt');
    expect(encryptCache.entries).toBe(2);
    expect(encryptCache.keys).toHaveLength(1);
    expect(encryptCache.keys[0]).toMatchObject({ entries: 2, contexts: 2, messages: 3, hits: 1, busiestEntry: { messages: 2 } });
    expect(encryptCache.keys[0].keyArn).toMatch(/^arn:aws:kms:/);
    expect(encryptCache.principals).toEqual([{ principal: 'api-key:app', entries: 2, fairShare: t.config.CACHE_CAPACITY }]);
    expect(encryptCache.limits).toMatchObject({ maxMessages: t.config.CACHE_MAX_MESSAGES, maxBytes: t.config.CACHE_MAX_BYTES });
    expect(response.text).not.toContain('acme-secret-tenant');
  });

  it('evict by key drops and zeroes the cached data keys, and the next encrypt calls KMS', async () => {
    await admin(TOKENS.ops, 'post', '/v1/admin/cache/evict', { all: true });
    const before = issuedKeys.length;
    expect((await encrypt()).status).toBe(200);
    expect((await encrypt()).status).toBe(200);
    expect(issuedKeys.length - before).toBe(1); // the second encrypt was a cache hit
    const cached = issuedKeys.at(-1)!;
    expect(cached.some((byte) => byte !== 0)).toBe(true);

    const response = await admin(TOKENS.ops, 'post', '/v1/admin/cache/evict', { keyId: 'alias/default' });
    expect(response.status, response.text).toBe(200);
    // The key encrypt cached and its copy in the decrypt cache (CACHE_SEED_DECRYPT).
    expect(response.body).toEqual({ dropped: 2, encrypt: 1, decrypt: 1 });
    expect(cached.every((byte) => byte === 0)).toBe(true);
    expect(lastEvent('EvictDataKeys').responseElements).toEqual({ droppedKeys: 2 });

    const calls = kmsCalls.GenerateDataKey ?? 0;
    expect((await encrypt()).status).toBe(200);
    expect(kmsCalls.GenerateDataKey).toBe(calls + 1);
  });

  it('evict by context drops only that context; evict all drops the rest', async () => {
    await admin(TOKENS.ops, 'post', '/v1/admin/cache/evict', { all: true });
    await encrypt({ tenant: 'a' });
    await encrypt({ tenant: 'b' });
    const [a, b] = issuedKeys.slice(-2) as [Buffer, Buffer];
    const byContext = await admin(TOKENS.ops, 'post', '/v1/admin/cache/evict', { context: { tenant: 'a' } });
    expect(byContext.body).toEqual({ dropped: 2, encrypt: 1, decrypt: 1 });
    expect(a.every((byte) => byte === 0)).toBe(true);
    expect(b.some((byte) => byte !== 0)).toBe(true);

    const calls = kmsCalls.GenerateDataKey ?? 0;
    await encrypt({ tenant: 'b' }); // still cached
    expect(kmsCalls.GenerateDataKey).toBe(calls);
    await encrypt({ tenant: 'a' }); // dropped: KMS again
    expect(kmsCalls.GenerateDataKey).toBe(calls + 1);

    const all = await admin(TOKENS.ops, 'post', '/v1/admin/cache/evict', { all: true });
    expect(all.body).toEqual({ dropped: 4, encrypt: 2, decrypt: 2 });
    expect(b.every((byte) => byte === 0)).toBe(true);
  });

  it('evict refuses a request that does not say what to drop, and drops nothing', async () => {
    await encrypt();
    for (const body of [{}, { all: false }, { all: true, keyId: 'alias/default' }, { keyId: 'alias/default', all: true, context: {} }]) {
      const response = await admin(TOKENS.ops, 'post', '/v1/admin/cache/evict', body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.body.code).toBe('InvalidRequest');
    }
    const state = (await admin(TOKENS.ops, 'get', '/v1/admin/cache')).body;
    expect(state.caches.find((c: { kind: string }) => c.kind === 'encrypt').entries).toBeGreaterThan(0);
  });

  it('a reload with an invalid file keeps the policy in force and answers the errors with line and column', async () => {
    const before = (await admin(TOKENS.reader, 'get', '/v1/admin/policy')).body;
    expect(before).toMatchObject({ mode: 'file', source: policyFile, rules: 3, apiKeys: 3 });
    expect(before.digest).toMatch(/^[0-9a-f]{64}$/);

    writeFileSync(policyFile, POLICY.replace('operations: [encrypt, decrypt]', 'operations: [encrypt, decrypt, explode]'));
    const response = await admin(TOKENS.ops, 'post', '/v1/admin/policy/reload');
    expect(response.status, response.text).toBe(422);
    expect(response.headers['content-type']).toContain('application/problem+json');
    expect(response.body.code).toBe('PolicyInvalid');
    expect(response.body.errors).toEqual([
      { line: 10, column: 36, field: 'rules[0].operations[2]', message: expect.stringContaining('unknown operation "explode"') },
    ]);
    expect(lastEvent('ReloadPolicy')).toMatchObject({ httpStatus: 422, errorCode: 'PolicyInvalid' });

    // The old policy is still in force: same digest, and the app still encrypts.
    expect((await encrypt()).status).toBe(200);
    const after = (await admin(TOKENS.reader, 'get', '/v1/admin/policy')).body;
    expect(after.digest).toBe(before.digest);
    expect(after.lastReload).toMatchObject({ ok: false, errors: [{ line: 10, column: 36 }] });

    // A valid file is swapped in.
    writeFileSync(policyFile, POLICY.replace('principals: [reader, ops]', 'principals: [ops]'));
    const reloaded = await admin(TOKENS.ops, 'post', '/v1/admin/policy/reload');
    expect(reloaded.status, reloaded.text).toBe(200);
    expect(reloaded.body.changed).toBe(true);
    expect(reloaded.body.digest).not.toBe(before.digest);
    expect((await admin(TOKENS.reader, 'get', '/v1/admin/policy')).status).toBe(403);
    writeFileSync(policyFile, POLICY);
    expect((await admin(TOKENS.ops, 'post', '/v1/admin/policy/reload')).status).toBe(200);
  });

  it('KMS state shows the breaker, recent calls and budgets per principal', async () => {
    await encrypt({ tenant: 'kms-state' });
    const response = await admin(TOKENS.reader, 'get', '/v1/admin/kms');
    expect(response.status).toBe(200);
    expect(response.body.provider).toBe('local');
    expect(response.body.breaker).toMatchObject({ state: 'closed', consecutiveFailures: 0, failureThreshold: t.config.KMS_BREAKER_FAILURES });
    const generate = response.body.operations.find((o: { operation: string }) => o.operation === 'GenerateDataKey');
    expect(generate.calls).toBeGreaterThan(0);
    expect(generate).toMatchObject({ errors: 0, errorRate: 0 });
    expect(response.body.budgets.map((b: { principal: string }) => b.principal)).toContain('api-key:app');
  });

  it('without REDIS_URL the fleet is this replica alone, and evict and reload answer for it only (no fleet field)', async () => {
    const fleet = await admin(TOKENS.reader, 'get', '/v1/admin/fleet');
    expect(fleet.status).toBe(200);
    expect(fleet.body.redis).toBe('off');
    expect(fleet.body.replicas.map((r: { instanceId: string }) => r.instanceId)).toEqual([fleet.body.instanceId]);
    const evicted = await admin(TOKENS.ops, 'post', '/v1/admin/cache/evict', { all: true });
    expect(evicted.status).toBe(200);
    expect(evicted.body).not.toHaveProperty('fleet');
    const reloaded = await admin(TOKENS.ops, 'post', '/v1/admin/policy/reload');
    expect(reloaded.status).toBe(200);
    expect(reloaded.body).not.toHaveProperty('fleet');
  });

  it('no admin response holds key material or a token', async () => {
    // Fill both caches, then ask every admin route once more.
    const sealed = await encrypt({ tenant: 'scan' });
    await request(t.app.server).post('/v1/decrypt').set(bearer(TOKENS.app)).send({ ciphertext: sealed.body.ciphertext });
    for (const { method, path } of OPERATIONS.filter((o) => o.method === 'get')) await admin(TOKENS.ops, method, path);
    await admin(TOKENS.ops, 'post', '/v1/admin/cache/evict', { all: true });
    await admin(TOKENS.ops, 'post', '/v1/admin/policy/reload');

    const text = adminBodies.join('\n');
    expect(issuedKeyBytes.length).toBeGreaterThan(3);
    for (const key of issuedKeyBytes) {
      for (const encoded of [key.toString('base64'), key.toString('base64url'), key.toString('hex'), key.toString('hex').toUpperCase()]) {
        expect(text).not.toContain(encoded);
      }
    }
    for (const token of Object.values(TOKENS)) {
      expect(text).not.toContain(token);
      expect(text).not.toContain(sha(token));
    }
  });
});

describe('admin API in dev mode', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp();
  });
  afterAll(async () => t?.close());

  // inject, not supertest: the refusal depends on the client address, and supertest always
  // connects from loopback.
  it('the dev token has admin rights from loopback only, and a refusal is audited', async () => {
    const auth = { authorization: 'Bearer dev-token' };
    const local = await t.app.inject({ method: 'GET', url: '/v1/admin/cache', headers: auth, remoteAddress: '127.0.0.1' });
    expect(local.statusCode).toBe(200);
    for (const remoteAddress of ['10.1.2.3', '::ffff:192.168.0.7']) {
      const remote = await t.app.inject({ method: 'POST', url: '/v1/admin/cache/evict', headers: auth, payload: { all: true }, remoteAddress });
      expect(remote.statusCode, remoteAddress).toBe(403);
      const event = t.auditEvents().at(-1) as Record<string, any>;
      expect(event).toMatchObject({ eventName: 'EvictDataKeys', httpStatus: 403, sourceIPAddress: remoteAddress });
      expect(event.additionalEventData.denyReason).toContain('loopback only');
    }
  });
});
