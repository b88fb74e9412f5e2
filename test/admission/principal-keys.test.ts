/**
 * One id, two callers: the API key `reports-service` and a JWT whose subject is
 * `reports-service` share none of the per-caller structures, each driven through the app:
 * the in-flight cap, request turns, refusal holds, the rate limit, the KMS budget, KMS turns
 * and pace, and the data-key cache share. Every structure is keyed by principalKey()
 * (src/authz/principal-key.ts); one keyed by the bare id would let either caller fill or drain
 * the other's.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type ClientRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { KeyProvider } from '../../src/kms/provider.js';
import { buildTestApp, countingProvider, type TestApp } from '../helpers/app.js';
import { until, within } from '../helpers/polling.js';

const API_TOKEN = 'token-reports-service';
const HELLO = Buffer.from('hello').toString('base64');
const ISSUER = 'https://issuer.test';
const NOW = Date.now();

let dir: string;
let policyFile: string;
let jwt: string;
let t: TestApp | undefined;
let url: string;
let open: () => void = () => {};
const uploads: ClientRequest[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'principal-keys-'));
  const pair = await generateKeyPair('RS256');
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }] }));
  const rule = (method: string) => [
    `  - id: reports-${method}`,
    `    authMethods: [${method}]`,
    '    principals: [reports-service]',
    '    operations: [encrypt, decrypt]',
    '    keys: [alias/default]',
    '    context: { required: [purpose] }',
  ];
  policyFile = join(dir, 'policy.yaml');
  writeFileSync(
    policyFile,
    [
      'version: 1',
      'authentication:',
      '  apiKeys:',
      '    - name: reports-service',
      `      sha256: "${createHash('sha256').update(API_TOKEN).digest('hex')}"`,
      `  jwt: { issuer: "${ISSUER}", audience: envelope-service, jwksFile: jwks.json, algorithms: [RS256] }`,
      'rules:',
      ...rule('api-key'),
      ...rule('jwt'),
    ].join('\n'),
  );
  jwt = await new SignJWT({})
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
    .setIssuer(ISSUER)
    .setAudience('envelope-service')
    .setSubject('reports-service')
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(pair.privateKey);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  open();
  for (const upload of uploads.splice(0)) upload.destroy();
  await t?.close();
  t = undefined;
});

/** Holds every GenerateDataKey whose purpose starts with `held` until open(). */
function holdingProvider(provider: KeyProvider): KeyProvider {
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => (release = resolve));
  open = release;
  return Object.assign(Object.create(provider) as KeyProvider, {
    generateDataKey: async (...args: Parameters<KeyProvider['generateDataKey']>) => {
      if (String(args[1]?.purpose ?? '').startsWith('held')) await gate;
      return provider.generateDataKey(...args);
    },
  });
}

async function start(env: Record<string, string>, options: { hold?: boolean; frozen?: boolean } = {}): Promise<Record<string, number>> {
  let calls: Record<string, number> = {};
  t = await buildTestApp({
    policyFile,
    env,
    ...(options.frozen ? { now: () => NOW } : {}),
    wrapProvider: (provider) => {
      const counted = countingProvider(options.hold ? holdingProvider(provider) : provider);
      calls = counted.calls;
      return counted;
    },
  });
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  const address = t.app.server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  url = `http://127.0.0.1:${address.port}`;
  return calls;
}

const asApiKey = `Bearer ${API_TOKEN}`;
const asJwt = () => `Bearer ${jwt}`;

async function encrypt(authorization: string, purpose: string): Promise<{ status: number; code?: string; cacheHit?: boolean }> {
  const response = await fetch(`${url}/v1/encrypt`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization },
    body: JSON.stringify({ plaintext: HELLO, context: { purpose } }),
  });
  const body = (await response.json()) as { code?: string };
  return { status: response.status, ...(body.code ? { code: body.code } : {}) };
}

async function metric(name: string): Promise<string> {
  return t!.metrics.registry.getSingleMetricAsString(name);
}

const lastEventOf = (type: string) =>
  t!.auditEvents().findLast((event) => (event.userIdentity as { type?: string } | undefined)?.type === type) as
    | { additionalEventData?: { cacheHit?: boolean } }
    | undefined;

describe('the same id under two authentication methods shares nothing', () => {
  it('in-flight cap: the JWT holding MAX_IN_FLIGHT_PER_PRINCIPAL trickled uploads does not 429 the API key', async () => {
    await start({ MAX_IN_FLIGHT_PER_PRINCIPAL: '3' });
    for (let i = 0; i < 3; i++) {
      const upload = httpRequest(`${url}/v1/encrypt`, {
        method: 'POST',
        headers: { authorization: asJwt(), 'content-type': 'application/json', 'content-length': 1000 },
      });
      upload.on('error', () => {});
      upload.write('{"plaintext":');
      uploads.push(upload);
    }
    // All three are in, each past the cap and holding its slot while its body trickles (its
    // declared 1000 bytes charged as buffered). Probing before that could take a slot from an upload.
    await until(async () => /request_buffer_bytes 3000\b/.test(await metric('request_buffer_bytes')));
    // The JWT's cap is full: its next request is refused...
    expect((await encrypt(asJwt(), 'more')).code).toBe('TooManyInFlight');
    // ...and the API key of the same name is not.
    expect(await encrypt(asApiKey, 'report')).toEqual({ status: 200 });
  });

  it("request turns: the JWT's request holding its only turn does not make the API key wait", async () => {
    const calls = await start({ REQUEST_CONCURRENCY_PER_PRINCIPAL: '1', KMS_CONCURRENCY_PER_PRINCIPAL: '100' }, { hold: true });
    expect(await encrypt(asApiKey, 'warm')).toEqual({ status: 200 }); // the key's look-up, out of the way
    const held = encrypt(asJwt(), 'held-jwt');
    // The held request has the JWT's turn (it is at KMS) before the second is sent: sent together,
    // the second could take the turn first, finish, and leave nothing waiting.
    await until(() => calls.GenerateDataKey === 2);
    const waiting = encrypt(asJwt(), 'second-jwt');
    await until(async () => /requests_waiting_turn 1/.test(await metric('requests_waiting_turn')));
    expect(await within(encrypt(asApiKey, 'cold-report'), 3_000)).toEqual({ status: 200 });
    open();
    expect([(await held).status, (await waiting).status]).toEqual([200, 200]);
  });

  it("refusal holds: the JWT's held 429 does not use up the API key's REFUSAL_HOLD_PER_CALLER", async () => {
    await start({ RATE_LIMIT_MAX: '1', REFUSAL_HOLD_MAX_MS: '3000', REFUSAL_HOLD_PER_CALLER: '1' });
    expect((await encrypt(asJwt(), 'a')).status).toBe(200);
    const jwtRefused = encrypt(asJwt(), 'b');
    await until(async () => /refusals_held 1/.test(await metric('refusals_held')));
    expect((await encrypt(asApiKey, 'a')).status).toBe(200);
    const apiRefused = encrypt(asApiKey, 'b');
    await until(async () => /refusal_holds_total\{outcome="(held|over_cap)"\} 2|outcome="over_cap"\} 1/.test(await metric('refusal_holds_total')));
    const holds = await metric('refusal_holds_total');
    expect(holds).toContain('refusal_holds_total{outcome="held"} 2');
    expect(holds).not.toMatch(/outcome="over_cap"/);
    expect([(await jwtRefused).code, (await apiRefused).code]).toEqual(['RateLimited', 'RateLimited']);
  });

  it("rate limit: the JWT's spent RATE_LIMIT_MAX leaves the API key's bucket full", async () => {
    await start({ RATE_LIMIT_MAX: '2' });
    for (const purpose of ['a', 'b']) expect((await encrypt(asJwt(), purpose)).status).toBe(200);
    expect((await encrypt(asJwt(), 'c')).code).toBe('RateLimited');
    for (const purpose of ['a', 'b']) expect((await encrypt(asApiKey, purpose)).status).toBe(200);
  });

  it("KMS budget: the JWT's spent KMS_BUDGET_BURST leaves the API key's budget whole", async () => {
    // A frozen clock: no refill. Three tokens: the key's look-up and two data keys.
    const calls = await start({ KMS_BUDGET_BURST: '3', KMS_BUDGET_PER_SECOND: '1' }, { frozen: true });
    for (const purpose of ['a', 'b']) expect((await encrypt(asJwt(), purpose)).status).toBe(200);
    expect((await encrypt(asJwt(), 'c')).code).toBe('KmsBudgetExceeded');
    for (const purpose of ['c', 'd', 'e']) expect((await encrypt(asApiKey, purpose)).status).toBe(200);
    expect(calls.GenerateDataKey).toBe(5);
  });

  it("KMS turns: the JWT's KMS calls holding KMS_CONCURRENCY_PER_PRINCIPAL do not queue the API key's", async () => {
    const calls = await start({ KMS_CONCURRENCY_PER_PRINCIPAL: '1' }, { hold: true });
    expect(await encrypt(asApiKey, 'warm')).toEqual({ status: 200 });
    const held = [encrypt(asJwt(), 'held-1'), encrypt(asJwt(), 'held-2')];
    await until(() => calls.GenerateDataKey === 2);
    expect(await within(encrypt(asApiKey, 'cold-report'), 3_000)).toEqual({ status: 200 });
    open();
    expect((await Promise.all(held)).map((answer) => answer.status)).toEqual([200, 200]);
  });

  it("KMS pace: the JWT's paced burst does not pace the API key's call", async () => {
    const calls = await start({ KMS_PACE_PER_SECOND: '2', KMS_CONCURRENCY_PER_PRINCIPAL: '100' });
    expect(await encrypt(asApiKey, 'warm')).toEqual({ status: 200 });
    // Six cold calls, 500 ms apart: the last starts 2.5 s from now.
    const burst = Array.from({ length: 6 }, (_, i) => encrypt(asJwt(), `burst-${i}`));
    await until(() => calls.GenerateDataKey === 2);
    expect(await within(encrypt(asApiKey, 'cold-report'), 1_500)).toEqual({ status: 200 });
    expect((await Promise.all(burst)).map((answer) => answer.status)).toEqual(Array(6).fill(200));
  });

  it("cache share: the JWT's flood of new partitions leaves the API key's data keys cached", async () => {
    await start({ CACHE_CAPACITY: '8', KMS_BUDGET_BURST: '1000' });
    const working = ['r1', 'r2', 'r3'];
    for (const purpose of working) expect((await encrypt(asApiKey, purpose)).status).toBe(200);
    for (let i = 0; i < 16; i++) expect((await encrypt(asJwt(), `flood-${i}`)).status).toBe(200);
    for (const purpose of working) {
      expect((await encrypt(asApiKey, purpose)).status).toBe(200);
      expect(lastEventOf('api-key')?.additionalEventData?.cacheHit).toBe(true);
    }
  });
});
