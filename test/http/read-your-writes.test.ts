/**
 * Read your writes without KMS: a data key encrypt generates or reuses is also cached for
 * decrypt (CACHE_SEED_DECRYPT, on by default), so a decrypt of what was just written makes no
 * KMS Decrypt. What must not change: a decrypt is authorized on its own grant, an admin evict
 * drops the key from both caches, and a policy reload takes effect on the very next request
 * with every cache warm. Real providers (the embedded one and local-kms through the AWS SDK),
 * a real policy file.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterEach, expect, it } from 'vitest';
import { buildTestApp, countingProvider, describeProviders, type ProviderKind, type TestApp } from '../helpers/app.js';

const TOKENS = { writer: 'writer-token-0123456789', app: 'app-token-0123456789', ops: 'ops-token-0123456789' };
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const sha = (token: string) => createHash('sha256').update(token).digest('hex');
const HELLO = Buffer.from('hello').toString('base64');

/** app may encrypt and (when `appDecrypts`) decrypt; writer may only encrypt; ops administers. */
const policy = (appDecrypts: boolean) => `version: 1
authentication:
  apiKeys:
    - { name: writer, sha256: "${sha(TOKENS.writer)}" }
    - { name: app, sha256: "${sha(TOKENS.app)}" }
    - { name: ops, sha256: "${sha(TOKENS.ops)}" }
rules:
  - id: app-data
    principals: [app]
    operations: [${appDecrypts ? 'encrypt, decrypt' : 'encrypt'}]
    keys: ["*"]
    context: { allowOthers: true }
  - id: writer-data
    principals: [writer]
    operations: [encrypt]
    keys: ["*"]
    context: { allowOthers: true }
  - id: admin-act
    principals: [ops]
    operations: [admin:cache, admin:policy]
    keys: ["*"]
`;

let t: TestApp | undefined;
let dir: string | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

async function start(kind: ProviderKind, env: Record<string, string> = {}) {
  dir = mkdtempSync(join(tmpdir(), 'read-your-writes-'));
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, policy(true));
  let counter!: ReturnType<typeof countingProvider>;
  t = await buildTestApp({ provider: kind, policyFile, env, wrapProvider: (provider) => (counter = countingProvider(provider)) });
  const server = t.app.server;
  return {
    calls: counter.calls,
    rewritePolicy: (appDecrypts: boolean) => writeFileSync(policyFile, policy(appDecrypts)),
    encrypt: (context: Record<string, string>, token = TOKENS.app) =>
      request(server).post('/v1/encrypt').set(bearer(token)).send({ plaintext: HELLO, context }),
    decrypt: (ciphertext: string, token = TOKENS.app) => request(server).post('/v1/decrypt').set(bearer(token)).send({ ciphertext }),
    admin: (path: string, body?: object) => request(server).post(path).set(bearer(TOKENS.ops)).send(body ?? {}),
  };
}

describeProviders('read your writes on the %s provider', (kind) => {
  it('a decrypt of what was just written makes no KMS Decrypt; with CACHE_SEED_DECRYPT=false it makes one', async () => {
    const on = await start(kind);
    const written = await on.encrypt({ tenant: 'a' });
    expect(written.status, written.text).toBe(200);
    const read = await on.decrypt(written.body.ciphertext);
    expect(read.status, read.text).toBe(200);
    expect(read.body.plaintext).toBe(HELLO);
    expect(on.calls.Decrypt ?? 0).toBe(0);
    const event = t!.auditEvents().filter((e) => e.eventName === 'Decrypt').at(-1) as { additionalEventData: { cacheHit: boolean } };
    expect(event.additionalEventData.cacheHit).toBe(true);
    await t!.close();
    t = undefined;

    const off = await start(kind, { CACHE_SEED_DECRYPT: 'false' });
    const again = await off.encrypt({ tenant: 'a' });
    expect((await off.decrypt(again.body.ciphertext)).status).toBe(200);
    expect(off.calls.Decrypt).toBe(1);
  });

  it('a reused key is offered too, and the decrypt copy outlives the encrypt cap (each cache by its own limits)', async () => {
    const { encrypt, decrypt, calls } = await start(kind, { CACHE_MAX_MESSAGES: '2' });
    const ciphertexts: string[] = [];
    for (let i = 0; i < 3; i++) ciphertexts.push((await encrypt({ tenant: 'a' })).body.ciphertext);
    expect(calls.GenerateDataKey).toBe(2);
    for (const ciphertext of ciphertexts) expect((await decrypt(ciphertext)).status).toBe(200);
    expect(calls.Decrypt ?? 0).toBe(0);
  });

  it('a copy the decrypt cache dropped is offered again by the next encrypt that reuses the key', async () => {
    const { encrypt, decrypt, calls } = await start(kind);
    const written = await encrypt({ tenant: 'a' });
    // The decrypt cache alone loses its copy (as by its capacity or age); the encrypt key stays.
    expect(t!.service.caches.decrypt.evictWhere(() => true)).toBe(1);
    expect((await encrypt({ tenant: 'a' })).status).toBe(200);
    expect(calls.GenerateDataKey).toBe(1);
    expect((await decrypt(written.body.ciphertext)).status).toBe(200);
    expect(calls.Decrypt ?? 0).toBe(0);
  });

  it('authorization is unchanged: a writer without decrypt is refused the key it just cached', async () => {
    const { encrypt, decrypt } = await start(kind);
    const written = await encrypt({ tenant: 'w' }, TOKENS.writer);
    expect(written.status).toBe(200);
    const refused = await decrypt(written.body.ciphertext, TOKENS.writer);
    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe('AccessDenied');
    expect(refused.text).not.toContain(HELLO);
  });

  it('an admin evict drops the key from both caches: the next decrypt calls KMS', async () => {
    const { encrypt, decrypt, admin, calls } = await start(kind);
    const written = await encrypt({ tenant: 'a' });
    const evicted = await admin('/v1/admin/cache/evict', { context: { tenant: 'a' } });
    expect(evicted.status, evicted.text).toBe(200);
    expect(evicted.body).toEqual({ dropped: 2, encrypt: 1, decrypt: 1 });
    expect((await decrypt(written.body.ciphertext)).status).toBe(200);
    expect(calls.Decrypt).toBe(1);
  });

  it('a policy reload takes effect on the next request with every cache warm', async () => {
    const { encrypt, decrypt, admin, calls, rewritePolicy } = await start(kind);
    const written = await encrypt({ tenant: 'a' });
    expect((await decrypt(written.body.ciphertext)).status).toBe(200);
    expect(t!.service.caches.encrypt.size).toBe(1);
    expect(t!.service.caches.decrypt.size).toBe(1);

    rewritePolicy(false);
    expect((await admin('/v1/admin/policy/reload')).status).toBe(200);
    const refused = await decrypt(written.body.ciphertext);
    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe('AccessDenied');
    expect((await encrypt({ tenant: 'a' })).status).toBe(200);

    rewritePolicy(true);
    expect((await admin('/v1/admin/policy/reload')).status).toBe(200);
    expect((await decrypt(written.body.ciphertext)).status).toBe(200);
    expect(t!.service.caches.decrypt.size).toBe(1);
    expect(calls.Decrypt ?? 0).toBe(0);
    expect(calls.GenerateDataKey).toBe(1);
  });
});
