/**
 * Tenants, through the app with the example policy (examples/policy.yaml): its JWT section
 * makes a Kubernetes namespace one tenant (`tenantClaim: /kubernetes.io/namespace`), so the
 * service accounts a namespace admin can mint without limit share one data-key cache share and
 * one KMS budget. Minting subjects buys the tenant nothing:
 *
 * - CACHE_CAPACITY=40: 40 subjects of tenant-b each caching a data key of their own cannot evict
 *   reports-service's 30-key working set (CACHE_MIN_SHARE_PERCENT=75 guarantees it 30);
 * - their KMS calls all draw from one budget: a new subject finds it spent.
 *
 * The example's JWKS holds a key whose private half is gone; the test copies the policy next to
 * a JWKS of its own, the file otherwise unchanged.
 */
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LocalKeyProvider } from '../../src/kms/local.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';

const EXAMPLE = new URL('../../examples/policy.yaml', import.meta.url).pathname;
const REPORTS = { authorization: 'Bearer demo-tenant-b-reports-token' };
const HELLO = Buffer.from('hello').toString('base64');
const NOW = Date.now();

let dir: string;
let policyFile: string;
let privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
let t: TestApp | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tenants-'));
  policyFile = join(dir, 'policy.yaml');
  copyFileSync(EXAMPLE, policyFile);
  const pair = await generateKeyPair('RS256');
  privateKey = pair.privateKey;
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }] }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  await t?.close();
  t = undefined;
});

/** A projected service-account token of namespace `namespace`, as the kubelet mints them. */
function serviceAccount(namespace: string, name: string): Promise<string> {
  return new SignJWT({ 'kubernetes.io': { namespace, serviceaccount: { name } } })
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
    .setIssuer('https://kubernetes.default.svc.cluster.local')
    .setAudience('envelope-service')
    .setSubject(`system:serviceaccount:${namespace}:${name}`)
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(privateKey);
}

async function start(env: Record<string, string>, frozen = false): Promise<TestApp> {
  t = await buildTestApp({ policyFile, env, ...(frozen ? { now: () => NOW } : {}) });
  const provider = t.provider as LocalKeyProvider;
  await provider.createAlias('alias/tenant-b', (await provider.createKey()).keyId);
  return t;
}

async function decryptHits(): Promise<number> {
  const text = await t!.metrics.registry.getSingleMetricAsString('datakey_cache_hits_total');
  return Number(/datakey_cache_hits_total\{cache="decrypt"\} (\d+)/.exec(text)?.[1] ?? 0);
}

const context = (purpose: string) => ({ tenant: 'tenant-b', purpose });

describe('tenants share one cache share and one KMS budget (example policy)', () => {
  it("CACHE_CAPACITY=40: 40 subjects of namespace tenant-b cannot evict reports-service's 30-key working set", async () => {
    await start({ CACHE_CAPACITY: '40', CACHE_MIN_SHARE_PERCENT: '75', KMS_BUDGET_BURST: '1000', KMS_BUDGET_PER_SECOND: '1000' });
    const app = t!.app.server;
    // 70 ciphertexts, each under a data key of its own: 30 for reports-service, one per subject.
    const made = await request(app)
      .post('/v1/encrypt/batch')
      .set(REPORTS)
      .send({ items: Array.from({ length: 70 }, (_, i) => ({ keyId: 'alias/tenant-b', plaintext: HELLO, context: context(`p-${i}`) })) });
    expect(made.status).toBe(200);
    const ciphertexts = (made.body.results as { ciphertext: string }[]).map((result) => result.ciphertext);
    const working = ciphertexts.slice(0, 30);
    // As if written elsewhere: drop the copies encrypt offered to the decrypt cache.
    t!.service.caches.decrypt.clear();
    const round = async () => {
      const before = await decryptHits();
      for (const ciphertext of working) expect((await request(app).post('/v1/decrypt').set(REPORTS).send({ ciphertext })).status).toBe(200);
      return (await decryptHits()) - before;
    };

    expect(await round()).toBe(0); // the working set's first round fills the decrypt cache
    expect(await round()).toBe(30);
    // Each of 40 subjects of one namespace caches a data key of its own.
    for (let i = 0; i < 40; i++) {
      const jwt = await serviceAccount('tenant-b', `worker-${i}`);
      const response = await request(app).post('/v1/decrypt').set({ authorization: `Bearer ${jwt}` }).send({ ciphertext: ciphertexts[30 + i] });
      expect(response.status).toBe(200);
    }
    expect(await round()).toBe(30);

    // Two owners in the decrypt cache: the tenant and reports-service, one cache share each.
    const decrypt = t!.app.services.envelope.cacheViews().find((view) => view.kind === 'decrypt')!;
    const owners = [...new Set(decrypt.entries.map((entry) => entry.owner))].sort();
    expect(owners).toEqual(['api-key:reports-service', 'tenant:tenant-b']);
  });

  it("their KMS calls draw from one tenant budget: a new subject finds it spent; reports-service's own is whole", async () => {
    // A frozen clock: no refill. Ten tokens: tenant-b's key look-up and nine data keys.
    await start({ KMS_BUDGET_BURST: '10', KMS_BUDGET_PER_SECOND: '1' }, true);
    const app = t!.app.server;
    const statuses: string[] = [];
    for (let i = 0; i < 40; i++) {
      const jwt = await serviceAccount('tenant-b', `minted-${i}`);
      const response = await request(app).post('/v1/datakey').set({ authorization: `Bearer ${jwt}` }).send({ keyId: 'alias/tenant-b', context: { tenant: 'tenant-b' } });
      statuses.push(response.status === 200 ? '200' : `${response.status} ${response.body.code as string}`);
    }
    expect(statuses.filter((status) => status === '200')).toHaveLength(9);
    expect(statuses.filter((status) => status === '429 KmsBudgetExceeded')).toHaveLength(31);
    // Another principal of the same id space, outside the tenant: its own budget.
    const reports = await request(app).post('/v1/encrypt').set(REPORTS).send({ keyId: 'alias/tenant-b', plaintext: HELLO, context: context('q3') });
    expect(reports.status).toBe(200);
  });
});
