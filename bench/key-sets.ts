/**
 * Key sets, measured against two private local-kms processes playing two regions:
 *
 * 1. KMS economy: N encrypts of 1 KiB over 10 contexts (CACHE_MAX_MESSAGES = N / 10), under
 *    `alias/default` (one key) and under a two-key set (one key per region); KMS calls counted
 *    from /metrics (kms_requests_total) and scaled to 10,000 encrypts.
 * 2. Failover: a key-set ciphertext is decrypted (cold cache) once before region A's process is
 *    killed; then, cold each time, the time from the kill to the first successful decrypt, and
 *    the time of each next decrypt (each tries region A first until its breaker opens).
 *
 *   npm run bench:key-sets               10,000 encrypts per variant
 *   npm run bench:key-sets -- --smoke    1,000 encrypts per variant
 *
 * The service runs in this process (compose + buildApp, listening on 127.0.0.1, port 0) with
 * its defaults for the breaker (5 failures) and the SDK (3 attempts): what an unconfigured
 * deployment would see.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../src/app.js';
import { PolicyStore } from '../src/authz/store.js';
import { compose } from '../src/compose.js';
import { loadConfig } from '../src/config.js';
import { AwsKmsProvider } from '../src/kms/aws.js';
import { LOCAL_KMS_CREDENTIALS, LOCAL_KMS_SEED, localKmsSettings, startLocalKms } from '../test/helpers/local-kms.js';
import { diff, kmsCalls } from './lib/kms-metrics.js';

const smoke = process.argv.includes('--smoke');
const N = smoke ? 1_000 : 10_000;
const CONTEXTS = 10;
const CONCURRENCY = 16;
const REGION_A = 'eu-west-2';
const REGION_B = 'us-east-1';
const KEY_A = `arn:aws:kms:${REGION_A}:111122223333:key/${LOCAL_KMS_SEED.keys.default.keyId}`;
const KEY_B = `arn:aws:kms:${REGION_B}:444455556666:key/${LOCAL_KMS_SEED.keys.tenantA.keyId}`;
const AUTH = { authorization: 'Bearer dev-token', 'content-type': 'application/json' };

const [a, b] = await Promise.all([
  startLocalKms({ region: REGION_A, accountId: '111122223333' }),
  startLocalKms({ region: REGION_B, accountId: '444455556666' }),
]);
const dir = mkdtempSync(join(tmpdir(), 'bench-key-sets-'));
writeFileSync(join(dir, 'sets.yaml'), `keySets:\n  pair:\n    keys: [${KEY_A}, ${KEY_B}]\n    generator: ${KEY_A}\n`);
const config = loadConfig({
  KMS_PROVIDER: 'aws',
  AWS_REGION: REGION_A,
  KMS_ENDPOINT: a.endpoint,
  POLICY_FILE: 'unused',
  KEY_SETS_FILE: join(dir, 'sets.yaml'),
  LOCAL_KEYSTORE: join(dir, 'keystore.json'),
  AUDIT_LOG: join(dir, 'audit.log'),
  LOG_LEVEL: 'silent',
  MAX_EVENT_LOOP_DELAY_MS: '0',
  CACHE_MAX_MESSAGES: String(N / CONTEXTS),
  KMS_BUDGET_PER_SECOND: '100000',
  KMS_BUDGET_BURST: '100000',
});
const credentials = LOCAL_KMS_CREDENTIALS;
const service = await compose(config, {
  provider: new AwsKmsProvider({ settings: localKmsSettings(a.endpoint, { KMS_MAX_ATTEMPTS: 3 }), credentials }),
  providerFor: (region) => new AwsKmsProvider({ settings: localKmsSettings(b.endpoint, { AWS_REGION: region, KMS_MAX_ATTEMPTS: 3 }), credentials }),
  policy: PolicyStore.dev('dev-token'),
  checkpoints: false,
});
const app = await buildApp(service);
await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;

async function post(path: string, body: unknown): Promise<{ status: number; json: Record<string, string> }> {
  const response = await fetch(`${base}${path}`, { method: 'POST', headers: AUTH, body: JSON.stringify(body) });
  return { status: response.status, json: (await response.json()) as Record<string, string> };
}

async function economy(keyId: string): Promise<Record<string, number>> {
  service.envelope.clear();
  const plaintext = Buffer.alloc(1024, 1).toString('base64');
  const before = await kmsCalls(base);
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < N) {
        const i = next++;
        const answer = await post('/v1/encrypt', { plaintext, keyId, context: { tenant: 'bench', purpose: `p${i % CONTEXTS}` } });
        if (answer.status !== 200) throw new Error(`encrypt under ${keyId}: ${answer.status}`);
      }
    }),
  );
  return diff(before, await kmsCalls(base));
}

const per10k = (calls: Record<string, number>) =>
  Object.fromEntries(Object.entries(calls).map(([operation, count]) => [operation, Math.round((count * 10_000) / N)]));

try {
  const single = await economy('alias/default');
  const pair = await economy('keyset/pair');
  console.log(`KMS calls for ${N} encrypts over ${CONTEXTS} contexts (CACHE_MAX_MESSAGES=${N / CONTEXTS}), per 10,000 encrypts:`);
  console.log(`  one key (alias/default):      ${JSON.stringify(per10k(single))}`);
  console.log(`  two-key set (keyset/pair):    ${JSON.stringify(per10k(pair))}`);

  const encrypted = await post('/v1/encrypt', { plaintext: 'aGk=', keyId: 'keyset/pair', context: { tenant: 'bench' } });
  service.envelope.clear();
  const warm = await post('/v1/decrypt', { ciphertext: encrypted.json.ciphertext });
  if (warm.status !== 200) throw new Error(`decrypt before the outage: ${warm.status}`);
  await a.stop();
  const killed = performance.now();
  let firstMs: number | undefined;
  const after: number[] = [];
  for (let attempt = 0; attempt < 30 && after.length < 10; attempt++) {
    service.envelope.clear();
    const started = performance.now();
    const answer = await post('/v1/decrypt', { ciphertext: encrypted.json.ciphertext });
    if (answer.status !== 200) continue;
    if (firstMs === undefined) firstMs = performance.now() - killed;
    else after.push(performance.now() - started);
  }
  console.log('Failover, region A killed (defaults: KMS_MAX_ATTEMPTS=3, KMS_BREAKER_FAILURES=5), cold cache each decrypt:');
  console.log(`  kill -> first successful decrypt through region B: ${firstMs?.toFixed(0)} ms`);
  // Each of these still tries region A first until KMS_BREAKER_FAILURES failures open its breaker.
  console.log(`  the next ${after.length} decrypts, in order: ${after.map((ms) => ms.toFixed(1)).join(', ')} ms`);
  const state = await (await fetch(`${base}/v1/admin/kms`, { headers: AUTH })).json() as { regions: { region: string; breaker: { state: string } }[] };
  console.log(`  breakers now: ${state.regions.map((region) => `${region.region} ${region.breaker.state}`).join(', ')}`);
} finally {
  await app.close();
  service.stop();
  await service.close();
  await Promise.all([a.dispose(), b.dispose()]);
  rmSync(dir, { recursive: true, force: true });
}
