/**
 * Principals sharing one deployment: what one of them can take from the others over HTTP, on
 * both providers (the AWS one through the SDK against the real local-kms), with a policy whose
 * rule lets the flooder choose a context value (so each new value is a cold partition).
 *
 * - KMS budget: a principal's KMS calls are bounded by KMS_BUDGET_BURST/PER_SECOND; over it,
 *   429 KmsBudgetExceeded while its cached keys keep working and other principals are served.
 * - No grant, no KMS: a principal no rule could allow causes no KMS look-up at all.
 * - A replayed forged envelope costs one KMS Decrypt (or ReEncrypt), not one per replay.
 * - Cache shares: one principal's flood of new partitions never evicts another's data key.
 * - The breaker is everyone's: one principal hammering cold partitions cannot make KMS
 *   throttle and fail everyone's cold requests. KMS throttling cannot be produced by
 *   local-kms (it has no quotas), so the account quota is simulated here by a provider
 *   wrapper that answers Throttled once a fixed number of calls has been made: a mock, used
 *   only for that.
 * - Key state stays behind the policy: 403 for a caller without a grant on a disabled or
 *   pending-deletion key, 409 only for one with a grant (local provider: it can disable keys).
 */
import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { decorateProvider } from '../../src/kms/decorate.js';
import { KmsError } from '../../src/kms/errors.js';
import { LocalKeyProvider } from '../../src/kms/local.js';
import type { KeyProvider } from '../../src/kms/provider.js';
import { buildTestApp, countingProvider, describeProviders, type TestApp } from '../helpers/app.js';
import { forgedCiphertext } from '../helpers/forged-envelope.js';

const POLICY = new URL('../fixtures/policy/neighbours.yaml', import.meta.url).pathname;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const FLOODER = bearer('token-flooder');
const BILLING = bearer('token-billing');
const STRANGER = bearer('token-stranger');
const NOBODY = bearer('token-nobody');
const HELLO = Buffer.from('hello').toString('base64');
const NOW = Date.now();

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function start(kind: 'local' | 'aws', env: Record<string, string> = {}, wrap: (provider: KeyProvider) => KeyProvider = (p) => p) {
  let counter!: ReturnType<typeof countingProvider>;
  let base!: KeyProvider;
  // A frozen clock: budgets do not refill during the test, so every count is exact.
  t = await buildTestApp({
    provider: kind,
    policyFile: POLICY,
    env,
    now: () => NOW,
    wrapProvider: (provider) => {
      base = provider;
      return (counter = countingProvider(wrap(provider)));
    },
  });
  return { app: t.app, calls: counter.calls, base };
}

const encrypt = (app: TestApp['app'], auth: Record<string, string>, body: object) => request(app.server).post('/v1/encrypt').set(auth).send(body);
const floodBatch = (app: TestApp['app'], from: number, count: number) =>
  request(app.server)
    .post('/v1/encrypt/batch')
    .set(FLOODER)
    .send({ items: Array.from({ length: count }, (_, i) => ({ plaintext: HELLO, context: { purpose: `p-${from + i}` } })) });
const kmsCalls = (calls: Record<string, number>) => Object.values(calls).reduce((sum, n) => sum + n, 0);
const lastEvent = () => t!.auditEvents().at(-1) as { errorCode?: string; additionalEventData: { cacheHit?: boolean } };

describeProviders('noisy neighbours on the %s provider', (kind) => {

  it('KMS budget: a batch of cold partitions spends the burst, then 429 KmsBudgetExceeded; cache hits and other principals still served', async () => {
    const { app, calls } = await start(kind, { KMS_BUDGET_PER_SECOND: '1', KMS_BUDGET_BURST: '10' });
    const batch = await floodBatch(app, 0, 30);
    expect(batch.status).toBe(200);
    const results = batch.body.results as { ciphertext?: string; error?: { code: string; status: number } }[];
    // 10 tokens: one DescribeKey (alias/default) and 9 GenerateDataKey; the rest refused unsent.
    expect(kmsCalls(calls)).toBe(10);
    expect(results.filter((result) => result.ciphertext)).toHaveLength(9);
    expect(results.filter((result) => result.error?.code === 'KmsBudgetExceeded' && result.error.status === 429)).toHaveLength(21);

    const cachedPurpose = `p-${results.findIndex((result) => result.ciphertext)}`;
    expect((await encrypt(app, FLOODER, { plaintext: HELLO, context: { purpose: cachedPurpose } })).status).toBe(200);
    const refused = await encrypt(app, FLOODER, { plaintext: HELLO, context: { purpose: 'cold' } });
    expect(refused.status).toBe(429);
    expect(refused.body.code).toBe('KmsBudgetExceeded');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(lastEvent().errorCode).toBe('KmsBudgetExceeded');
    const datakey = await request(app.server).post('/v1/datakey').set(FLOODER).send({ context: { purpose: 'cold' } });
    expect([datakey.status, datakey.body.code]).toEqual([429, 'KmsBudgetExceeded']);
    const binary = await request(app.server)
      .post('/v1/encrypt/binary')
      .set({ ...FLOODER, 'content-type': 'application/octet-stream', 'x-envelope-context': 'purpose=cold-binary' })
      .send(Buffer.from('hello'));
    expect([binary.status, binary.body.code]).toEqual([429, 'KmsBudgetExceeded']);
    expect(kmsCalls(calls)).toBe(10);

    expect((await encrypt(app, BILLING, { plaintext: HELLO, context: { purpose: 'cold' } })).status).toBe(200);
    const metrics = await request(app.server).get('/metrics');
    expect(metrics.text).toContain('kms_budget_rejections_total{operation="GenerateDataKey"} 24');
  });

  it('a principal no rule could allow causes no KMS call, whatever keys it names', async () => {
    const { app, calls } = await start(kind);
    const ciphertext = (await encrypt(app, BILLING, { plaintext: HELLO, context: { purpose: 'billing' } })).body.ciphertext as string;
    const before = { ...calls };
    for (let i = 0; i < 20; i++) {
      const keyId = `alias/probe-${randomBytes(6).toString('hex')}`;
      const response = await encrypt(app, NOBODY, { plaintext: HELLO, keyId, context: { purpose: 'x' } });
      expect(response.status).toBe(403);
      expect(response.body.code).toBe('AccessDenied');
    }
    expect((await request(app.server).post('/v1/decrypt').set(NOBODY).send({ ciphertext })).status).toBe(403);
    const keys = await request(app.server).get('/v1/keys').set(NOBODY);
    expect([keys.status, keys.body.keys]).toEqual([200, []]);
    expect(calls).toEqual(before);
  });

  it('a replayed forged envelope costs KMS one Decrypt, and gets the same 422 every time', async () => {
    const { app, calls } = await start(kind);
    const forged = forgedCiphertext((await encrypt(app, BILLING, { plaintext: HELLO, context: { purpose: 'billing' } })).body.ciphertext as string);
    const answers = [];
    for (let i = 0; i < 5; i++) {
      const response = await request(app.server).post('/v1/decrypt').set(BILLING).send({ ciphertext: forged });
      answers.push(`${response.status} ${response.body.code as string}`);
    }
    expect(answers).toEqual(Array.from({ length: 5 }, () => '422 DataKeyUnwrapFailed'));
    expect(calls.Decrypt).toBe(1);
    // A rewrap of the same forgery is refused from the same memory: ReEncrypt unwraps as Decrypt does.
    const rewrap = await request(app.server).post('/v1/rewrap').set(FLOODER).send({ ciphertext: forged });
    expect([rewrap.status, rewrap.body.code]).toEqual([422, 'DataKeyUnwrapFailed']);
    expect(calls.ReEncrypt).toBeUndefined();
  });

  it('a replayed forged envelope costs KMS one ReEncrypt on rewrap too', async () => {
    const { app, calls } = await start(kind);
    const forged = forgedCiphertext((await encrypt(app, FLOODER, { plaintext: HELLO, context: { purpose: 'x' } })).body.ciphertext as string);
    for (let i = 0; i < 5; i++) {
      const response = await request(app.server).post('/v1/rewrap').set(FLOODER).send({ ciphertext: forged });
      expect([response.status, response.body.code]).toEqual([422, 'DataKeyUnwrapFailed']);
    }
    expect(calls.ReEncrypt).toBe(1);
  });

  it("cache shares: another principal's flood of new partitions leaves billing's data key cached", async () => {
    const { app, calls } = await start(kind, { CACHE_CAPACITY: '10', KMS_BUDGET_BURST: '1000' });
    expect((await encrypt(app, BILLING, { plaintext: HELLO, context: { purpose: 'billing' } })).status).toBe(200);
    for (let from = 0; from < 60; from += 20) expect((await floodBatch(app, from, 20)).status).toBe(200);
    const afterFlood = calls.GenerateDataKey;
    expect(afterFlood).toBeGreaterThanOrEqual(61);
    expect((await encrypt(app, BILLING, { plaintext: HELLO, context: { purpose: 'billing' } })).status).toBe(200);
    expect(lastEvent().additionalEventData.cacheHit).toBe(true);
    expect(calls.GenerateDataKey).toBe(afterFlood);
    const metrics = await request(app.server).get('/metrics');
    expect(metrics.text).toContain('datakey_cache_entries{cache="encrypt"} 10');
  });

  it("KMS turns: one principal's cold requests have at most KMS_CONCURRENCY_PER_PRINCIPAL KMS calls in flight; another's cold request is not queued behind them", async () => {
    // The flooder's data-key calls are held open until billing's call has started (or 10 s, so
    // a regression fails instead of hanging): queued behind the flooder, billing's call could
    // only start once those held calls gave up, and the order below would show it.
    let billingStarted!: () => void;
    const billingHasStarted = new Promise<void>((resolve) => (billingStarted = resolve));
    const order: string[] = [];
    const inFlight: Record<string, number> = {};
    const most: Record<string, number> = {};
    const slow = (provider: KeyProvider): KeyProvider => ({
      ...decorateProvider(provider, (_operation, call) => call()),
      generateDataKey: async (keyId, context) => {
        if (!String(context.purpose).startsWith('cold-')) return provider.generateDataKey(keyId, context);
        const owner = context.purpose === 'cold-billing' ? 'billing' : 'flooder';
        order.push(owner);
        inFlight[owner] = (inFlight[owner] ?? 0) + 1;
        most[owner] = Math.max(most[owner] ?? 0, inFlight[owner]!);
        try {
          if (owner === 'billing') billingStarted();
          else await Promise.race([billingHasStarted, new Promise((resolve) => setTimeout(resolve, 10_000))]);
          return await provider.generateDataKey(keyId, context);
        } finally {
          inFlight[owner]! -= 1;
        }
      },
    });
    const { app } = await start(kind, {}, slow);
    await encrypt(app, BILLING, { plaintext: HELLO, context: { purpose: 'warm' } }); // the key's DescribeKey
    // .then() sends each now (a supertest request is sent only once something awaits it).
    const flood = Array.from({ length: 12 }, (_, i) => encrypt(app, FLOODER, { plaintext: HELLO, context: { purpose: `cold-${i}` } }).then((response) => response));
    while (inFlight.flooder !== 2) await new Promise((resolve) => setTimeout(resolve, 5));
    const billing = await encrypt(app, BILLING, { plaintext: HELLO, context: { purpose: 'cold-billing' } });
    expect(billing.status).toBe(200);
    expect((await Promise.all(flood)).map((response) => response.status)).toEqual(Array(12).fill(200));
    expect(most.flooder).toBe(2);
    // Billing's call started while the flooder's first two were still held, ten behind them.
    expect(order.slice(0, 3)).toEqual(['flooder', 'flooder', 'billing']);
  });

  it("KMS pace: one principal's cold burst starts its KMS calls 1/KMS_PACE_PER_SECOND apart; another's cold request is not paced behind them", async () => {
    const starts: Record<string, number[]> = { flooder: [], billing: [] };
    const timed = (provider: KeyProvider): KeyProvider => ({
      ...decorateProvider(provider, (_operation, call) => call()),
      generateDataKey: async (keyId, context) => {
        const purpose = String(context.purpose);
        if (purpose.startsWith('cold-')) starts[purpose === 'cold-billing' ? 'billing' : 'flooder']!.push(performance.now());
        return provider.generateDataKey(keyId, context);
      },
    });
    // 10 a second (100 ms apart); KMS turns out of the way, so the pace alone spaces the calls.
    const { app } = await start(kind, { KMS_PACE_PER_SECOND: '10', KMS_CONCURRENCY_PER_PRINCIPAL: '100' }, timed);
    await encrypt(app, BILLING, { plaintext: HELLO, context: { purpose: 'warm' } }); // the key's DescribeKey
    await new Promise((resolve) => setTimeout(resolve, 60));
    // .then() sends each now (a supertest request is sent only once something awaits it).
    // Ten calls: the burst still has calls to pace 0.9 s after its first, room for a busy machine.
    const flood = Array.from({ length: 10 }, (_, i) => encrypt(app, FLOODER, { plaintext: HELLO, context: { purpose: `cold-${i}` } }).then((response) => response));
    while (starts.flooder!.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    expect((await encrypt(app, BILLING, { plaintext: HELLO, context: { purpose: 'cold-billing' } })).status).toBe(200);
    expect((await Promise.all(flood)).map((response) => response.status)).toEqual(Array(10).fill(200));

    const gaps = starts.flooder!.slice(1).map((at, i) => at - starts.flooder![i]!);
    expect(gaps).toHaveLength(9);
    // Each start waits for the previous one's, then one interval (a timer may fire a little early).
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(95);
    // Billing's call was not paced behind the flooder's: it started while the burst had calls to pace.
    expect(starts.billing![0]!).toBeLessThan(starts.flooder![9]!);
  });

  it("the breaker is everyone's: a flooder stopped by its budget cannot make KMS throttle the others' cold requests", async () => {
    // Simulated account quota (see the header): 25 calls, then KMS throttles every call.
    let quota = 25;
    const throttling = (provider: KeyProvider): KeyProvider => {
      const spend = <T>(call: () => Promise<T>): Promise<T> =>
        quota-- > 0 ? call() : Promise.reject(new KmsError('Throttled', 'simulated ThrottlingException: account quota exceeded'));
      return {
        kind: provider.kind,
        generateDataKey: (keyId, context) => spend(() => provider.generateDataKey(keyId, context)),
        decryptDataKey: (wrapped, keyId, context) => spend(() => provider.decryptDataKey(wrapped, keyId, context)),
        reEncryptDataKey: (wrapped, s, sc, d, dc) => spend(() => provider.reEncryptDataKey(wrapped, s, sc, d, dc)),
        encryptDataKey: (key, keyId, context) => spend(() => provider.encryptDataKey(key, keyId, context)),
        describeKey: (keyId) => spend(() => provider.describeKey(keyId)),
        listAliases: () => spend(() => provider.listAliases()),
        close: () => provider.close(),
      };
    };
    const { app } = await start(kind, { KMS_BUDGET_PER_SECOND: '1', KMS_BUDGET_BURST: '10', KMS_BREAKER_FAILURES: '5' }, throttling);
    for (let from = 0; from < 200; from += 50) expect((await floodBatch(app, from, 50)).status).toBe(200);
    const served = [];
    for (let i = 0; i < 5; i++) {
      const response = await encrypt(app, BILLING, { plaintext: HELLO, context: { purpose: `monthly-${i}` } });
      served.push(`${response.status} ${(response.body.code as string | undefined) ?? ''}`.trim());
    }
    expect(served).toEqual(['200', '200', '200', '200', '200']);
    expect(t!.app.services.circuit.state).toBe('closed');
  });
});

describe('key state stays behind the policy (local provider)', () => {
  it('a caller without a grant gets 403 for a disabled or pending-deletion key; one with a grant gets 409', async () => {
    const { app, base } = await start('local');
    const local = base as LocalKeyProvider;
    const disabled = await local.createKey();
    await local.createAlias('alias/retired', disabled.keyId);
    await local.disableKey(disabled.keyId);
    const deleting = await local.createKey();
    await local.createAlias('alias/retired-soon', deleting.keyId);
    await local.scheduleKeyDeletion(deleting.keyId);

    for (const keyId of ['alias/retired', 'alias/retired-soon', disabled.keyArn]) {
      const denied = await encrypt(app, STRANGER, { plaintext: HELLO, keyId, context: { any: 'thing' } });
      expect(`${keyId} ${denied.status} ${denied.body.code as string}`).toBe(`${keyId} 403 AccessDenied`);
    }
    const disabledAnswer = await encrypt(app, FLOODER, { plaintext: HELLO, keyId: 'alias/retired', context: { purpose: 'x' } });
    expect([disabledAnswer.status, disabledAnswer.body.code]).toEqual([409, 'KeyDisabled']);
    const deletingAnswer = await encrypt(app, FLOODER, { plaintext: HELLO, keyId: 'alias/retired-soon', context: { purpose: 'x' } });
    expect([deletingAnswer.status, deletingAnswer.body.code]).toEqual([409, 'KeyPendingDeletion']);
  });
});
