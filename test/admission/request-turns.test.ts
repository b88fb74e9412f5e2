/**
 * Request turns (src/admission/in-flight-limit.ts), over real sockets: a principal's requests beyond
 * REQUEST_CONCURRENCY_PER_PRINCIPAL wait their turn in arrival order instead of all being worked
 * on at once; another principal never waits behind them; waiting requests count towards the
 * in-flight cap; a request takes its turn only once its body is in; a refusal gives its turn
 * back before it is held; a stream gives it back once its response starts; a client that goes
 * away while waiting frees its place.
 */
import { randomUUID } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { KeyProvider } from '../../src/kms/provider.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { until } from '../helpers/polling.js';

const POLICY = new URL('../fixtures/policy/neighbours.yaml', import.meta.url).pathname;
const FLOODER = 'token-flooder';
const BILLING = 'token-billing';
const HELLO = Buffer.from('hello').toString('base64');

let t: TestApp | undefined;
let open: () => void = () => {};
afterEach(async () => {
  open();
  await t?.close();
  t = undefined;
});

/** Holds every GenerateDataKey until open(); records the purpose of each call as it starts. */
function gatedProvider(started: string[]): { wrap: (provider: KeyProvider) => KeyProvider; close: () => void } {
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => (release = resolve));
  open = release;
  return {
    close: release,
    wrap: (provider) =>
      Object.assign(Object.create(provider) as KeyProvider, {
        generateDataKey: async (...args: Parameters<KeyProvider['generateDataKey']>) => {
          started.push(String(args[1]?.purpose ?? ''));
          await gate;
          return provider.generateDataKey(...args);
        },
      }),
  };
}

async function listening(env: Record<string, string>, wrapProvider?: (provider: KeyProvider) => KeyProvider): Promise<string> {
  // KMS turns out of the way: what is shown here is the request turn alone.
  t = await buildTestApp({ policyFile: POLICY, env: { KMS_CONCURRENCY_PER_PRINCIPAL: '100', ...env }, ...(wrapProvider ? { wrapProvider } : {}) });
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  const address = t.app.server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return `http://127.0.0.1:${address.port}`;
}

function encrypt(url: string, token: string, purpose: string, signal?: AbortSignal): Promise<Response> {
  return fetch(`${url}/v1/encrypt`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ plaintext: HELLO, context: { purpose } }),
    ...(signal ? { signal } : {}),
  });
}

async function waitingNow(): Promise<number> {
  const text = await t!.metrics.registry.getSingleMetricAsString('requests_waiting_turn');
  return Number(/requests_waiting_turn (\d+)/.exec(text)?.[1]);
}

describe('request turns', () => {
  it('works on two of a principal\'s requests at once; the rest wait, in arrival order, and are all answered', async () => {
    const started: string[] = [];
    const gated = gatedProvider(started);
    const url = await listening({ REQUEST_CONCURRENCY_PER_PRINCIPAL: '2' }, gated.wrap);
    const answers: Promise<Response>[] = [];
    for (const purpose of ['p1', 'p2', 'p3', 'p4', 'p5']) {
      answers.push(encrypt(url, FLOODER, purpose));
      // Arrival order is the order sent: each request is in the service before the next is sent.
      await until(async () => started.length + (await waitingNow()) === answers.length);
    }
    expect(started).toEqual(['p1', 'p2']);
    expect(await waitingNow()).toBe(3);

    gated.close();
    expect((await Promise.all(answers)).map((response) => response.status)).toEqual([200, 200, 200, 200, 200]);
    expect(started).toEqual(['p1', 'p2', 'p3', 'p4', 'p5']);
    expect(await waitingNow()).toBe(0);
  });

  it('never makes another principal wait behind a principal\'s queue', async () => {
    const started: string[] = [];
    const gated = gatedProvider(started);
    const url = await listening({ REQUEST_CONCURRENCY_PER_PRINCIPAL: '1' }, gated.wrap);
    const flooder = ['f1', 'f2', 'f3'].map((purpose) => encrypt(url, FLOODER, purpose));
    await until(async () => started.length === 1 && (await waitingNow()) === 2);

    // billing's cold request reaches KMS while the flooder's queue waits.
    const billing = encrypt(url, BILLING, 'b1');
    await until(() => started.includes('b1'));
    expect(await waitingNow()).toBe(2);
    gated.close();
    expect((await billing).status).toBe(200);
    expect((await Promise.all(flooder)).map((response) => response.status)).toEqual([200, 200, 200]);
  });

  it('counts waiting requests towards MAX_IN_FLIGHT_PER_PRINCIPAL', async () => {
    const started: string[] = [];
    const gated = gatedProvider(started);
    const url = await listening({ REQUEST_CONCURRENCY_PER_PRINCIPAL: '1', MAX_IN_FLIGHT_PER_PRINCIPAL: '3' }, gated.wrap);
    const taken = ['f1', 'f2', 'f3'].map((purpose) => encrypt(url, FLOODER, purpose));
    await until(async () => started.length === 1 && (await waitingNow()) === 2);

    const fourth = await encrypt(url, FLOODER, 'f4');
    expect(fourth.status).toBe(429);
    expect(await fourth.json()).toMatchObject({ code: 'TooManyInFlight' });
    gated.close();
    expect((await Promise.all(taken)).map((response) => response.status)).toEqual([200, 200, 200]);
  });

  it('gives a refusal\'s turn back before the refusal is held', async () => {
    // One turn; a budget of two KMS calls (the key's lookup and one data key): a second new context is refused, and held ~0.5-1 s.
    const url = await listening({ REQUEST_CONCURRENCY_PER_PRINCIPAL: '1', KMS_BUDGET_BURST: '2', KMS_BUDGET_PER_SECOND: '1', REFUSAL_HOLD_MAX_MS: '1000' });
    expect((await encrypt(url, FLOODER, 'warm')).status).toBe(200);

    const refusedAt = performance.now();
    const refused = encrypt(url, FLOODER, randomUUID()).then((response) => ({ status: response.status, ms: performance.now() - refusedAt }));
    await until(() => t!.auditEvents().some((event) => event.errorCode === 'KmsBudgetExceeded'));
    // The cached context is served while the refusal is still held.
    const hit = await encrypt(url, FLOODER, 'warm');
    const hitMs = performance.now() - refusedAt;
    expect(hit.status).toBe(200);
    const { status, ms } = await refused;
    expect(status).toBe(429);
    expect(ms).toBeGreaterThanOrEqual(450);
    expect(hitMs).toBeLessThan(ms);
  });

  it('frees the place of a client that goes away while waiting, and audits its request', async () => {
    const started: string[] = [];
    const gated = gatedProvider(started);
    const url = await listening({ REQUEST_CONCURRENCY_PER_PRINCIPAL: '1' }, gated.wrap);
    const first = encrypt(url, FLOODER, 'f1');
    await until(() => started.length === 1);
    const abandon = new AbortController();
    const gone = encrypt(url, FLOODER, 'gone', abandon.signal).catch((error: unknown) => error);
    await until(async () => (await waitingNow()) === 1);

    abandon.abort();
    await gone;
    await until(async () => (await waitingNow()) === 0);
    await until(() => t!.auditEvents().some((event) => event.errorCode === 'TooManyInFlight'));
    gated.close();
    expect((await first).status).toBe(200);
    // The abandoned request never took a turn: KMS saw only f1, then f3.
    expect((await encrypt(url, FLOODER, 'f3')).status).toBe(200);
    expect(started).toEqual(['f1', 'f3']);
  });

  it('takes no turn while a body is still arriving: a slow upload never holds the principal\'s other requests', async () => {
    const url = await listening({ REQUEST_CONCURRENCY_PER_PRINCIPAL: '1' });
    const body = JSON.stringify({ plaintext: HELLO, context: { purpose: 'slow' } });
    const upload = httpRequest(`${url}/v1/encrypt`, {
      method: 'POST',
      headers: { authorization: `Bearer ${FLOODER}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    const answered = new Promise<IncomingMessage>((resolve, reject) => upload.once('response', resolve).once('error', reject));
    upload.write(body.slice(0, 10));
    await new Promise((resolve) => setTimeout(resolve, 50));

    expect((await encrypt(url, FLOODER, 'meanwhile')).status).toBe(200);
    upload.end(body.slice(10));
    expect((await answered).statusCode).toBe(200);
  });

  it('gives a stream\'s turn back once its response starts; the stream stays in flight until it ends', async () => {
    const url = await listening({ REQUEST_CONCURRENCY_PER_PRINCIPAL: '1', MAX_IN_FLIGHT_PER_PRINCIPAL: '2' });
    const openStream = async () => {
      const upload = httpRequest(`${url}/v1/encrypt/stream`, {
        method: 'POST',
        headers: { authorization: `Bearer ${FLOODER}`, 'content-type': 'application/octet-stream', 'x-envelope-context': 'purpose=stream' },
      });
      const response = new Promise<IncomingMessage>((resolve, reject) => upload.once('response', resolve).once('error', reject));
      upload.write(Buffer.alloc(64 * 1024, 1));
      const streaming = await response;
      streaming.resume();
      return { status: streaming.statusCode, end: () => new Promise((resolve) => (streaming.once('end', resolve), upload.end(Buffer.alloc(1024, 2)))) };
    };
    // The first stream's upload is not finished, and the principal's one turn is free: a second
    // stream gets it.
    const first = await openStream();
    const second = await openStream();
    expect([first.status, second.status]).toEqual([200, 200]);
    // Both still count towards the in-flight cap of 2.
    const third = await encrypt(url, FLOODER, 'third');
    expect(third.status).toBe(429);
    expect(await third.json()).toMatchObject({ code: 'TooManyInFlight' });

    await Promise.all([first.end(), second.end()]);
    await until(async () => (await encrypt(url, FLOODER, 'after')).status === 200);
  });
});
