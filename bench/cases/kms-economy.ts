/**
 * Case 3, KMS economy against a private local-kms: how many KMS calls a workload costs.
 *
 * - Spread: N encrypt requests of 1 KiB over 10 contexts (request i uses context i mod 10),
 *   `concurrency` at a time, with CACHE_MAX_MESSAGES (maxMessagesEncrypted) = N / 10.
 * - Burst: 200 concurrent cold encrypt requests on one new context.
 * - Read back: N encrypt-then-decrypt pairs over the same 10 contexts (each pair decrypts what
 *   its encrypt just wrote), with CACHE_SEED_DECRYPT off and on: the KMS Decrypt calls reading
 *   your writes costs.
 *
 * Ours: the service over HTTP (KMS_PROVIDER=aws against local-kms); calls counted from its
 * /metrics (kms_requests_total, every operation). Theirs: the AWS Encryption SDK in-process, a
 * NodeCachingMaterialsManager over a KmsKeyringNode whose KMS client points at the same
 * local-kms; calls counted by a middleware on that client. Same caps on both sides.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { LOCAL_KMS_SEED } from '../../test/helpers/local-kms.js';
import { DEFAULT_CACHE_LIMITS, KiB } from '../lib/constants.js';
import { skip, wants, type RunContext } from '../lib/context.js';
import { diff, kmsCalls } from '../lib/kms-metrics.js';
import type { KmsCase } from '../lib/results.js';
import { SUITE_0478, cachingManager, countingKmsKeyring, sdk } from '../lib/sdk.js';
import { postJson, startService, withServer } from '../lib/services.js';

export const KMS_CASE_IDS = ['kms.spread.ours', 'kms.spread.sdk', 'kms.burst.ours', 'kms.burst.sdk', 'kms.readback.off', 'kms.readback.on'] as const;

export async function runKmsEconomyCases(ctx: RunContext): Promise<void> {
  if (!wants(ctx, 'kms')) return;
  if (!('endpoint' in ctx.localKms)) {
    for (const id of KMS_CASE_IDS) skip(ctx, id, id, ctx.localKms.missing);
    ctx.log(`  KMS economy: SKIPPED (${ctx.localKms.missing})`);
    return;
  }
  const endpoint = ctx.localKms.endpoint;
  const s = ctx.settings;
  const plaintext = randomBytes(KiB);
  const contextOf = (i: number) => ({ tenant: 'bench', purpose: `p${i % s.kmsContexts}` });
  const burstContext = () => ({ tenant: 'bench', purpose: `burst-${randomUUID()}` });
  const base = { payloadBytes: KiB, contexts: s.kmsContexts, cacheMaxMessages: s.kmsCacheMaxMessages };

  // ---- ours, over HTTP ----
  await withServer(
    startService(ctx, 'service-kms-economy', 'local-kms', { env: { CACHE_MAX_MESSAGES: String(s.kmsCacheMaxMessages) } }),
    async ({ server, auth }) => {
      const url = `${server.url}/v1/encrypt`;
      const bodies = Array.from({ length: s.kmsContexts }, (_, i) => JSON.stringify({ plaintext: plaintext.toString('base64'), context: contextOf(i) }));

      let before = await kmsCalls(server.url);
      await pool(s.kmsSpreadRequests, s.kmsSpreadConcurrency, (i) => postJson(url, bodies[i % s.kmsContexts]!, auth));
      let after = await kmsCalls(server.url);
      record(ctx, 'kms.spread.ours', {
        ...base,
        label: `this service: ${s.kmsSpreadRequests} encrypts over ${s.kmsContexts} contexts`,
        requests: s.kmsSpreadRequests,
        concurrency: s.kmsSpreadConcurrency,
        kmsCalls: diff(before, after),
        how: 'HTTP, /metrics kms_requests_total',
      });

      const burstBody = JSON.stringify({ plaintext: plaintext.toString('base64'), context: burstContext() });
      before = after;
      await Promise.all(Array.from({ length: s.burstRequests }, () => postJson(url, burstBody, auth)));
      after = await kmsCalls(server.url);
      record(ctx, 'kms.burst.ours', {
        ...base,
        contexts: 1,
        label: `this service: ${s.burstRequests} concurrent cold encrypts, one context`,
        requests: s.burstRequests,
        concurrency: s.burstRequests,
        kmsCalls: diff(before, after),
        how: 'HTTP, /metrics kms_requests_total',
      });
    },
  );

  // ---- ours, read back: encrypt then decrypt, with and without seeding the decrypt cache ----
  for (const seed of [false, true]) {
    await withServer(
      startService(ctx, `service-kms-readback-${seed ? 'on' : 'off'}`, 'local-kms', {
        env: { CACHE_MAX_MESSAGES: String(s.kmsCacheMaxMessages), CACHE_SEED_DECRYPT: String(seed) },
      }),
      async ({ server, auth }) => {
        const bodies = Array.from({ length: s.kmsContexts }, (_, i) => JSON.stringify({ plaintext: plaintext.toString('base64'), context: contextOf(i) }));
        const before = await kmsCalls(server.url);
        await pool(s.kmsSpreadRequests, s.kmsSpreadConcurrency, async (i) => {
          const { ciphertext } = await postJson<{ ciphertext: string }>(`${server.url}/v1/encrypt`, bodies[i % s.kmsContexts]!, auth);
          await postJson(`${server.url}/v1/decrypt`, JSON.stringify({ ciphertext }), auth);
        });
        const after = await kmsCalls(server.url);
        record(ctx, `kms.readback.${seed ? 'on' : 'off'}`, {
          ...base,
          label: `this service: ${s.kmsSpreadRequests} encrypt-then-decrypt pairs over ${s.kmsContexts} contexts, CACHE_SEED_DECRYPT=${seed}`,
          requests: s.kmsSpreadRequests,
          concurrency: s.kmsSpreadConcurrency,
          kmsCalls: diff(before, after),
          how: 'HTTP, /metrics kms_requests_total',
        });
      },
    );
  }

  // ---- theirs, in-process ----
  const limits = { ...DEFAULT_CACHE_LIMITS, maxMessages: s.kmsCacheMaxMessages };
  const { keyring, calls } = countingKmsKeyring(endpoint, LOCAL_KMS_SEED.keys.default.keyArn);
  const cmm = cachingManager(keyring, limits);
  const encrypt = (context: Record<string, string>) => sdk.encrypt(cmm, plaintext, { encryptionContext: context, suiteId: SUITE_0478 });

  let before = { ...calls };
  await pool(s.kmsSpreadRequests, s.kmsSpreadConcurrency, (i) => encrypt(contextOf(i)));
  record(ctx, 'kms.spread.sdk', {
    ...base,
    label: `AWS Encryption SDK: ${s.kmsSpreadRequests} encrypts over ${s.kmsContexts} contexts`,
    requests: s.kmsSpreadRequests,
    concurrency: s.kmsSpreadConcurrency,
    kmsCalls: diff(before, calls),
    how: 'in-process caching CMM + KmsKeyringNode, suite 0x0478; KMS client middleware count',
  });

  before = { ...calls };
  const context = burstContext();
  await Promise.all(Array.from({ length: s.burstRequests }, () => encrypt(context)));
  record(ctx, 'kms.burst.sdk', {
    ...base,
    contexts: 1,
    label: `AWS Encryption SDK: ${s.burstRequests} concurrent cold encrypts, one context`,
    requests: s.burstRequests,
    concurrency: s.burstRequests,
    kmsCalls: diff(before, calls),
    how: 'in-process caching CMM + KmsKeyringNode, suite 0x0478; KMS client middleware count',
  });
}

function record(ctx: RunContext, id: string, fields: Omit<KmsCase, 'kind' | 'generateDataKeyCalls'>): void {
  const generateDataKeyCalls = fields.kmsCalls.GenerateDataKey ?? 0;
  ctx.cases[id] = { kind: 'kms', ...fields, generateDataKeyCalls };
  ctx.log(`  ${id}: ${fields.label}: ${JSON.stringify(fields.kmsCalls)}`);
}

/** Runs task(0..n-1) with at most `concurrency` in flight. */
async function pool(n: number, concurrency: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
}
