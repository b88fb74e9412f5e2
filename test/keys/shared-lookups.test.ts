/**
 * The key directory's look-ups that every principal relies on (the alias list, a known key's
 * refresh) run in a KMS queue of their own, and a first look-up is shared only once sent: a
 * principal whose own KMS queue is full never delays another principal's key look-up.
 *
 * The flooder's one KMS slot (KMS_CONCURRENCY_PER_PRINCIPAL=1) is held by a DescribeKey that a
 * provider wrapper keeps open until the test lets it go: a stand-in for a slow KMS answer.
 */
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import type { KeyProvider } from '../../src/kms/provider.js';
import { buildTestApp, countingProvider, type TestApp } from '../helpers/app.js';
import { until, within } from '../helpers/polling.js';

const POLICY = new URL('../fixtures/policy/neighbours.yaml', import.meta.url).pathname;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const FLOODER = bearer('token-flooder');
const BILLING = bearer('token-billing');
const HELLO = Buffer.from('hello').toString('base64');
const HELD_KEY = 'alias/retired-held';

let t: TestApp | undefined;
let open: () => void = () => {};
afterEach(async () => {
  open();
  await t?.close();
  t = undefined;
});

/** DescribeKey of HELD_KEY waits until open(). */
function holdingDescribe(provider: KeyProvider): KeyProvider {
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => (release = resolve));
  open = release;
  return Object.assign(Object.create(provider) as KeyProvider, {
    describeKey: async (keyId: string) => {
      if (keyId === HELD_KEY) await gate;
      return provider.describeKey(keyId);
    },
  });
}

async function start(): Promise<Record<string, number>> {
  let calls: Record<string, number> = {};
  t = await buildTestApp({
    policyFile: POLICY,
    env: { KMS_CONCURRENCY_PER_PRINCIPAL: '1' },
    wrapProvider: (provider) => {
      const counted = countingProvider(holdingDescribe(provider));
      calls = counted.calls;
      return counted;
    },
  });
  return calls;
}

async function queued(): Promise<number> {
  const text = await t!.metrics.registry.getSingleMetricAsString('kms_calls_queued');
  return Number(/kms_calls_queued (\d+)/.exec(text)?.[1]);
}

const send = <T extends request.Test>(test: T) => new Promise<request.Response>((resolve, reject) => test.end((error, response) => (error ? reject(error) : resolve(response))));

describe("a principal's full KMS queue delays no one else's key look-up", () => {
  it('the alias list (GET /v1/keys) is fetched in the shared queue, not in the queue of the principal that asked first', async () => {
    const calls = await start();
    const holding = send(request(t!.app.server).post('/v1/encrypt').set(FLOODER).send({ plaintext: HELLO, keyId: HELD_KEY, context: { purpose: 'x' } }));
    await until(() => calls.DescribeKey === 1);
    // The flooder's own look-up of the alias list: its KMS slot is taken, and the list is everyone's.
    const flooderKeys = send(request(t!.app.server).get('/v1/keys').set(FLOODER));
    const billingKeys = await within(send(request(t!.app.server).get('/v1/keys').set(BILLING)), 3_000);
    expect(billingKeys === 'waiting' ? 'waiting' : billingKeys.status).toBe(200);
    expect(calls.ListAliases).toBe(1);
    open();
    expect((await flooderKeys).status).toBe(200);
    expect((await holding).status).toBe(404);
  });

  it("a key's first look-up is shared once sent: another principal never waits in the asker's queue for it", async () => {
    const calls = await start();
    const holding = send(request(t!.app.server).post('/v1/encrypt').set(FLOODER).send({ plaintext: HELLO, keyId: HELD_KEY, context: { purpose: 'x' } }));
    await until(() => calls.DescribeKey === 1);
    // The flooder asks first for alias/default, which nobody has looked up: its call waits for its slot.
    const flooder = send(request(t!.app.server).post('/v1/encrypt').set(FLOODER).send({ plaintext: HELLO, context: { purpose: 'y' } }));
    await until(async () => (await queued()) === 1);
    const billing = await within(send(request(t!.app.server).post('/v1/encrypt').set(BILLING).send({ plaintext: HELLO, context: { purpose: 'z' } })), 3_000);
    expect(billing === 'waiting' ? 'waiting' : billing.status).toBe(200);
    open();
    expect((await flooder).status).toBe(200);
    expect((await holding).status).toBe(404);
  });
});
