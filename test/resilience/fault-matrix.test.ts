/**
 * KMS faults, seen from the caller: the real app on the AWS SDK provider, talking to the shared
 * local-kms through test/helpers/fault-proxy.ts, with small timeouts (400 ms request, 200 ms
 * connect, 2 attempts) and a breaker that opens after 3 failed calls for 1.5 s.
 *
 * For each fault: the status the caller gets and how long it takes (cold cache: the first KMS
 * call is DescribeKey), the breaker opening after enough failures and then failing fast without
 * reaching KMS, and recovery (200) once the fault is gone and the cooldown has passed. Then:
 * cached data keys keep serving while KMS is down, throttling is retried within its bound and
 * never opens the breaker (KMS answered; src/kms/circuit-breaker.ts says why), and
 * real key-state changes made through the SDK against local-kms reach the caller as 409/404.
 *
 * Throttling and KMS-side errors other than key state can only be injected (no real peer here
 * throttles or fails on demand); everything else is local-kms's own behaviour.
 */
import {
  CreateKeyCommand,
  DisableKeyCommand,
  KMSClient,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { kmsCallBoundMs } from '../../src/kms/aws.js';
import { AUTH, buildTestApp, type TestApp } from '../helpers/app.js';
import { startFaultProxy, type Fault, type FaultProxy } from '../helpers/fault-proxy.js';
import { LOCAL_KMS_CREDENTIALS, LOCAL_KMS_REGION, localKmsEndpoint, skipWithoutLocalKms } from '../helpers/local-kms.js';

const KMS = { KMS_TIMEOUT_MS: 400, KMS_CONNECT_TIMEOUT_MS: 200, KMS_MAX_ATTEMPTS: 2 };
const BREAKER_FAILURES = 3;
const COOLDOWN_MS = 1_500;
/** What the caller may wait for one failed request (the whole SDK retry cycle) in this setup. */
const FAILED_REQUEST_BOUND_MS = 3_000;
/**
 * An open circuit answers without touching the network (the proxy sees nothing: that is the
 * proof); this bound, below one KMS attempt's KMS_TIMEOUT_MS, only keeps a waited-for KMS call
 * out, with room for a busy machine's pause.
 */
const FAST_FAIL_MS = 300;

const skip = skipWithoutLocalKms();
let proxy: FaultProxy;
const apps: TestApp[] = [];
/** The matrix, printed at the end (the figures the resilience report quotes). */
const table: string[] = [];

beforeAll(async () => {
  if (skip) return;
  proxy = await startFaultProxy(localKmsEndpoint()!);
});
afterEach(async () => {
  if (skip) return;
  await proxy.set('pass');
  proxy.clearRecord();
  await Promise.all(apps.splice(0).map((t) => t.close()));
});
afterAll(async () => {
  if (skip) return;
  await proxy.close();
  if (table.length) console.log(`\nKMS fault matrix (timeout ${KMS.KMS_TIMEOUT_MS} ms, ${KMS.KMS_MAX_ATTEMPTS} attempts):\n${table.join('\n')}\n`);
});

async function app(env: Record<string, string> = {}, kms: Partial<typeof KMS> = {}): Promise<TestApp> {
  const settings = { ...KMS, ...kms };
  const t = await buildTestApp({
    provider: 'aws',
    endpoint: proxy.endpoint,
    kmsSettings: settings,
    env: {
      KMS_TIMEOUT_MS: String(settings.KMS_TIMEOUT_MS),
      KMS_CONNECT_TIMEOUT_MS: String(settings.KMS_CONNECT_TIMEOUT_MS),
      KMS_MAX_ATTEMPTS: String(settings.KMS_MAX_ATTEMPTS),
      KMS_BREAKER_FAILURES: String(BREAKER_FAILURES),
      KMS_BREAKER_COOLDOWN_MS: String(COOLDOWN_MS),
      ...env,
    },
  });
  apps.push(t);
  return t;
}

interface Timed {
  status: number;
  body: Record<string, unknown>;
  retryAfter: string | undefined;
  ms: number;
}

/**
 * In-process requests (app.inject, not supertest): the time measured is the service's alone,
 * and the fast-fail bound (FAST_FAIL_MS) leaves no room for a socket's setup on a busy machine.
 */
async function timed(t: TestApp, path: string, body: object): Promise<Timed> {
  const started = performance.now();
  const response = await t.app.inject({ method: 'POST', url: path, headers: AUTH, payload: body });
  return {
    status: response.statusCode,
    body: response.json() as Record<string, unknown>,
    retryAfter: response.headers['retry-after'] as string | undefined,
    ms: Math.round(performance.now() - started),
  };
}

const encrypt = (t: TestApp, context: Record<string, string> = { tenant: 'acme' }, keyId?: string) =>
  timed(t, '/v1/encrypt', { plaintext: Buffer.alloc(1024, 7).toString('base64'), context, ...(keyId ? { keyId } : {}) });

const decrypt = (t: TestApp, ciphertext: string) => timed(t, '/v1/decrypt', { ciphertext });

async function circuitGauge(t: TestApp): Promise<number> {
  const match = /^kms_circuit_state (\d)/m.exec(await t.metrics.scrape());
  return Number(match?.[1]);
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

interface Row {
  name: string;
  fault: Fault;
  code: string;
  retryAfter: string;
}

const FAULTS: Row[] = [
  { name: 'connection refused (KMS down)', fault: { kind: 'refuse' }, code: 'KmsUnavailable', retryAfter: '5' },
  { name: 'connection reset', fault: { kind: 'reset' }, code: 'KmsUnavailable', retryAfter: '5' },
  { name: 'HTTP 500 KMSInternalException', fault: { kind: 'http500' }, code: 'KmsUnavailable', retryAfter: '5' },
  { name: 'black hole (never answers)', fault: { kind: 'blackhole' }, code: 'KmsUnavailable', retryAfter: '5' },
  { name: 'latency 1500 ms (> timeout)', fault: { kind: 'latency', ms: 1_500 }, code: 'KmsUnavailable', retryAfter: '5' },
];

describe.skipIf(skip)('KMS fault matrix (aws provider, cold cache)', () => {
  it.each(FAULTS)('$name: 503 within the bound, breaker opens and fails fast, recovers after the cooldown', async ({ name, fault, code, retryAfter }) => {
    const t = await app();
    await proxy.set(fault);

    // 1. The caller gets 503 + Retry-After, in bounded time.
    const first = await encrypt(t);
    expect(first.status, JSON.stringify(first.body)).toBe(503);
    expect(first.body.code).toBe(code);
    expect(first.retryAfter).toBe(retryAfter);
    expect(first.ms).toBeLessThan(FAILED_REQUEST_BOUND_MS);
    if (fault.kind !== 'refuse') expect(proxy.count('DescribeKey')).toBe(KMS.KMS_MAX_ATTEMPTS); // SDK retried

    // 2. After BREAKER_FAILURES failed calls the circuit opens.
    for (let i = 1; i < BREAKER_FAILURES; i++) expect((await encrypt(t)).status).toBe(503);
    expect(t.app.services.circuit.state).toBe('open');
    expect(await circuitGauge(t)).toBe(1);

    // 3. Open: fail fast, nothing reaches KMS, Retry-After is the cooldown left (1.5 s -> 2).
    const seen = proxy.requests.length;
    const fast = await encrypt(t);
    expect(fast.status).toBe(503);
    expect(fast.body.code).toBe('KmsUnavailable');
    // The 1.5 s cooldown's remainder rounded up: 2, or 1 if more than 0.5 s went by since it opened.
    expect(fast.retryAfter).toMatch(/^[12]$/);
    expect(fast.ms).toBeLessThan(FAST_FAIL_MS);
    expect(proxy.requests.length).toBe(seen);
    const metrics = await t.metrics.scrape();
    expect(metrics).toMatch(/kms_circuit_rejections_total\{operation="DescribeKey"\} 1/);

    // 4. Fault removed: still failing fast until the cooldown is over, then one probe closes it.
    await proxy.set('pass');
    await sleep(COOLDOWN_MS + 50);
    expect(await circuitGauge(t)).toBe(2);
    const recovered = await encrypt(t);
    expect(recovered.status, JSON.stringify(recovered.body)).toBe(200);
    expect(t.app.services.circuit.state).toBe('closed');
    expect(await circuitGauge(t)).toBe(0);

    table.push(
      `  ${name.padEnd(34)} -> ${first.status} ${code} Retry-After ${retryAfter}, first failure ${first.ms} ms; ` +
        `open after ${BREAKER_FAILURES}: 503 Retry-After ${fast.retryAfter} in ${fast.ms} ms; after cooldown: ${recovered.status} in ${recovered.ms} ms`,
    );
  });

  it('latency below the timeout: slower, but 200', async () => {
    const t = await app();
    await proxy.set({ kind: 'latency', ms: 150 });
    const result = await encrypt(t);
    expect(result.status).toBe(200);
    expect(result.ms).toBeGreaterThanOrEqual(300); // DescribeKey + GenerateDataKey, 150 ms each
    expect(result.ms).toBeLessThan(FAILED_REQUEST_BOUND_MS);
    expect(t.app.services.circuit.state).toBe('closed');
    table.push(`  ${'latency 150 ms (< timeout)'.padEnd(34)} -> 200 in ${result.ms} ms (two KMS calls)`);
  });

  it('a fault on GenerateDataKey only (DescribeKey fine) is a 503 as well', async () => {
    const t = await app();
    await proxy.set('http500', { only: ['GenerateDataKey'] });
    const result = await encrypt(t);
    expect(result.status).toBe(503);
    expect(result.body.code).toBe('KmsUnavailable');
    expect(proxy.count('GenerateDataKey', 'http500')).toBe(KMS.KMS_MAX_ATTEMPTS);
    expect(proxy.count('DescribeKey', 'pass')).toBe(1);
  });

  it('throttling is retried with backoff KMS_MAX_ATTEMPTS times, within kmsCallBoundMs', async () => {
    const settings = { ...KMS, KMS_MAX_ATTEMPTS: 3 };
    const t = await app({}, settings);
    await proxy.set('throttle');
    const result = await encrypt(t);
    expect(result.status).toBe(503);
    expect(result.body.code).toBe('KmsThrottled');
    expect(result.retryAfter).toBe('1');
    const attempts = proxy.requests.filter((r) => r.fault === 'throttle');
    expect(attempts).toHaveLength(3);
    // The waits between attempts are the SDK's jittered backoff, each at most 1 s × 2^i.
    const gaps = attempts.slice(1).map((r, i) => r.at - attempts[i]!.at);
    gaps.forEach((gap, i) => expect(gap).toBeLessThanOrEqual(1_000 * 2 ** i + 250));
    expect(result.ms).toBeLessThanOrEqual(kmsCallBoundMs(settings));
    table.push(`  ${'throttling, 3 attempts'.padEnd(34)} -> 503 KmsThrottled in ${result.ms} ms (bound ${kmsCallBoundMs(settings)} ms), waits ${gaps.join(', ')} ms`);
  });

  it('HTTP 400 ThrottlingException: 503 KmsThrottled per call, the breaker stays closed, served again once KMS stops throttling', async () => {
    const t = await app();
    await proxy.set('throttle');
    for (let i = 0; i < BREAKER_FAILURES + 2; i++) {
      const result = await encrypt(t);
      expect(result.status).toBe(503);
      expect(result.body.code).toBe('KmsThrottled');
      expect(result.retryAfter).toBe('1');
    }
    expect(t.app.services.circuit.state).toBe('closed');
    expect(proxy.count('DescribeKey', 'throttle')).toBe((BREAKER_FAILURES + 2) * KMS.KMS_MAX_ATTEMPTS);
    await proxy.set('pass');
    expect((await encrypt(t)).status).toBe(200);
  });

  it('AccessDeniedException from KMS -> 403 KmsAccessDenied, and it does not trip the breaker', async () => {
    const t = await app();
    await proxy.set({ kind: 'error', status: 400, type: 'AccessDeniedException' });
    for (let i = 0; i < BREAKER_FAILURES + 1; i++) {
      const result = await encrypt(t);
      expect(result.status).toBe(403);
      expect(result.body.code).toBe('KmsAccessDenied');
    }
    expect(t.app.services.circuit.state).toBe('closed');
  });
});

describe.skipIf(skip)('cached data keys while KMS is down', () => {
  it('encrypts under a cached key and decrypts its ciphertexts keep working; cold partitions get 503', async () => {
    const t = await app({ CACHE_MAX_MESSAGES: '5' });
    const context = { tenant: 'acme', purpose: 'cached' };
    // Warm: the encrypt cache (1 message used), the key directory, and the decrypt cache.
    const warm = await encrypt(t, context);
    expect(warm.status).toBe(200);
    const ciphertext = warm.body.ciphertext as string;
    expect((await decrypt(t, ciphertext)).status).toBe(200);

    await proxy.set('refuse');
    proxy.clearRecord();

    // Cold partition: needs KMS -> 503. Repeat until the breaker is open.
    for (let i = 0; i < BREAKER_FAILURES; i++) expect((await encrypt(t, { tenant: 'cold', n: String(i) })).status).toBe(503);
    expect(t.app.services.circuit.state).toBe('open');

    // The cached key serves its remaining 4 messages (CACHE_MAX_MESSAGES 5), breaker open or not.
    const during: string[] = [];
    for (let i = 0; i < 4; i++) {
      const result = await encrypt(t, context);
      expect(result.status, JSON.stringify(result.body)).toBe(200);
      during.push(result.body.ciphertext as string);
    }
    // Decrypts of that data key (the old ciphertext and the new ones) need no KMS call either.
    for (const text of [ciphertext, ...during]) {
      const opened = await decrypt(t, text);
      expect(opened.status, JSON.stringify(opened.body)).toBe(200);
    }
    // Its cap reached, the key is gone: the next encrypt needs KMS, which is down.
    const capped = await encrypt(t, context);
    expect(capped.status).toBe(503);
    expect(capped.body.code).toBe('KmsUnavailable');
    expect(proxy.requests).toHaveLength(0); // refused connections never reach the proxy's handler
  });
});

describe.skipIf(skip)('key state changed through the SDK on local-kms', () => {
  let kms: KMSClient;
  beforeAll(() => {
    kms = new KMSClient({ endpoint: localKmsEndpoint()!, region: LOCAL_KMS_REGION, credentials: LOCAL_KMS_CREDENTIALS });
  });
  afterAll(() => kms?.destroy());

  const newKey = async (): Promise<string> => {
    const out = await kms.send(new CreateKeyCommand({ Description: 'fault-matrix test key' }));
    return out.KeyMetadata!.Arn!;
  };

  it('unknown key -> 404 KeyNotFound', async () => {
    const t = await app();
    const result = await encrypt(t, {}, 'alias/does-not-exist');
    expect(result.status).toBe(404);
    expect(result.body.code).toBe('KeyNotFound');
  });

  it('DisableKey -> 409 KeyDisabled: from DescribeKey on a cold directory, from GenerateDataKey on a warm one', async () => {
    const keyArn = await newKey();
    const warm = await app();
    expect((await encrypt(warm, { tenant: 'a' }, keyArn)).status).toBe(200);
    const ciphertext = (await encrypt(warm, { tenant: 'a' }, keyArn)).body.ciphertext as string;

    await kms.send(new DisableKeyCommand({ KeyId: keyArn }));

    // Fresh app (cold directory): DescribeKey reports Disabled.
    const cold = await app();
    const refused = await encrypt(cold, { tenant: 'a' }, keyArn);
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('KeyDisabled');
    // Decrypt of an old ciphertext under the disabled key is refused too.
    const closed = await decrypt(cold, ciphertext);
    expect(closed.status).toBe(409);
    expect(closed.body.code).toBe('KeyDisabled');

    // Warm directory (DescribeKey cached as Enabled for 60 s), cold data-key partition: KMS
    // itself refuses GenerateDataKey with DisabledException.
    const viaKms = await encrypt(warm, { tenant: 'b' }, keyArn);
    expect(viaKms.status).toBe(409);
    expect(viaKms.body.code).toBe('KeyDisabled');
    expect(warm.app.services.circuit.state).toBe('closed');
  });

  it('ScheduleKeyDeletion -> 409 KeyPendingDeletion, cold directory and warm', async () => {
    const keyArn = await newKey();
    const warm = await app();
    expect((await encrypt(warm, { tenant: 'a' }, keyArn)).status).toBe(200);

    await kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyArn, PendingWindowInDays: 7 }));

    const cold = await app();
    const refused = await encrypt(cold, { tenant: 'a' }, keyArn);
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('KeyPendingDeletion');

    const viaKms = await encrypt(warm, { tenant: 'b' }, keyArn);
    expect(viaKms.status).toBe(409);
    expect(viaKms.body.code).toBe('KeyPendingDeletion');
  });
});
