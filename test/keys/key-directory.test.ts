/**
 * The key directory: TTL caching of key look-ups, short negative caching, the state check,
 * and keeping the last answer while KMS is unreachable.
 */
import { describe, expect, it } from 'vitest';
import { KeyDirectory } from '../../src/keys/key-directory.js';
import { KmsBudgetExceededError, KmsBudgets } from '../../src/admission/kms-budget.js';
import { KmsTrace } from '../../src/keys/kms-trace.js';
import { KmsError } from '../../src/kms/errors.js';
import { KmsQueue } from '../../src/kms/kms-queue.js';
import type { KeyDescription, KeyProvider } from '../../src/kms/provider.js';

function fakeProvider() {
  const state = { calls: 0, failWith: undefined as KmsError | undefined, keyState: 'Enabled' };
  const provider = {
    kind: 'local',
    describeKey: async (keyId: string): Promise<KeyDescription> => {
      state.calls++;
      if (state.failWith) throw state.failWith;
      if (keyId === 'alias/missing') throw new KmsError('KeyNotFound', 'no such key');
      return { keyArn: 'arn:aws:kms:r:1:key/k', enabled: state.keyState === 'Enabled', state: state.keyState, requestId: `r${state.calls}` };
    },
    listAliases: async () => [{ aliasName: 'alias/a', aliasArn: 'arn:aws:kms:r:1:alias/a', keyArn: 'arn:aws:kms:r:1:key/k' }],
  } as unknown as KeyProvider;
  return { provider, state };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('key directory', () => {
  it('resolves once per TTL and records the DescribeKey request id only when it called KMS', async () => {
    const { provider, state } = fakeProvider();
    const directory = new KeyDirectory(provider, { ttlMs: 60_000 });
    const first = new KmsTrace();
    const second = new KmsTrace();
    expect(await directory.resolve('alias/a', first)).toBe('arn:aws:kms:r:1:key/k');
    expect(await directory.resolve('alias/a', second)).toBe('arn:aws:kms:r:1:key/k');
    expect(state.calls).toBe(1);
    expect(first.requestIds).toEqual(['r1']);
    expect(second.requestIds).toEqual([]);
  });

  it('remembers unknown keys briefly and refuses disabled ones', async () => {
    const { provider, state } = fakeProvider();
    const directory = new KeyDirectory(provider, { ttlMs: 20 });
    await expect(directory.resolve('alias/missing', new KmsTrace())).rejects.toMatchObject({ code: 'KeyNotFound' });
    await expect(directory.resolve('alias/missing', new KmsTrace())).rejects.toMatchObject({ code: 'KeyNotFound' });
    expect(state.calls).toBe(1);
    state.keyState = 'Disabled';
    await expect(directory.resolve('alias/b', new KmsTrace())).rejects.toMatchObject({ code: 'KeyDisabled' });
    state.keyState = 'PendingDeletion';
    await sleep(30);
    await expect(directory.resolve('alias/b', new KmsTrace())).rejects.toMatchObject({ code: 'KeyUnavailableState' });
  });

  it('keeps the last answer while KMS is unavailable, and fails without one', async () => {
    const { provider, state } = fakeProvider();
    const directory = new KeyDirectory(provider, { ttlMs: 20, notFoundTtlMs: 20 });
    await directory.resolve('alias/a', new KmsTrace());
    state.failWith = new KmsError('Unavailable', 'down');
    await sleep(30);
    expect(await directory.resolve('alias/a', new KmsTrace())).toBe('arn:aws:kms:r:1:key/k');
    await expect(directory.resolve('alias/never-seen', new KmsTrace())).rejects.toMatchObject({ code: 'Unavailable' });
    // Other failures are not papered over.
    state.failWith = new KmsError('AccessDenied', 'no');
    await sleep(30);
    await expect(directory.resolve('alias/a', new KmsTrace())).rejects.toMatchObject({ code: 'AccessDenied' });
  });

  it('names a key by its ARN and every alias pointing at it', async () => {
    const { provider } = fakeProvider();
    const directory = new KeyDirectory(provider);
    expect(await directory.namesOf('arn:aws:kms:r:1:key/k', new KmsTrace())).toEqual(['arn:aws:kms:r:1:key/k', 'alias/a', 'arn:aws:kms:r:1:alias/a']);
  });
});

describe('key directory alias list', () => {
  it('keeps the last alias list while KMS is unavailable', async () => {
    const { provider } = fakeProvider();
    let failAliases = false;
    const original = provider.listAliases.bind(provider);
    provider.listAliases = async () => {
      if (failAliases) throw new KmsError('Unavailable', 'down');
      return original();
    };
    const directory = new KeyDirectory(provider, { ttlMs: 20 });
    expect(await directory.namesOf('arn:aws:kms:r:1:key/k', new KmsTrace())).toContain('alias/a');
    failAliases = true;
    await sleep(30);
    expect(await directory.namesOf('arn:aws:kms:r:1:key/k', new KmsTrace())).toContain('alias/a');
  });
});

describe('key directory charges', () => {
  const billed = (principal: string, perSecond: number, burst: number) => {
    const trace = new KmsTrace();
    trace.billTo(principal, new KmsBudgets({ perSecond, burst }).payerFor(principal));
    return trace;
  };

  it('only the request that starts a look-up pays; coalesced and cached look-ups are free', async () => {
    const { provider, state } = fakeProvider();
    const directory = new KeyDirectory(provider);
    const leader = billed('a', 1, 1);
    const waiter = billed('b', 1, 1);
    await Promise.all([directory.resolve('alias/a', leader), directory.resolve('alias/a', waiter), directory.resolve('alias/a', leader)]);
    expect(state.calls).toBe(1);
    // a's single token went to the look-up; b's is untouched, and cached answers are free to both.
    expect(() => leader.charge('Decrypt')).toThrow(KmsBudgetExceededError);
    await directory.resolve('alias/a', leader);
    // The alias list is everyone's: its fetch is charged to no one, so b's token is still there.
    expect(await directory.namesOf('arn:aws:kms:r:1:key/k', waiter)).toContain('alias/a');
    expect(() => waiter.charge('Decrypt')).not.toThrow();
  });

  it('refreshing a known key after its TTL is free (a principal over budget keeps its cached keys); unknown names are charged every time', async () => {
    const { provider, state } = fakeProvider();
    const directory = new KeyDirectory(provider, { ttlMs: 20, notFoundTtlMs: 20 });
    const trace = billed('a', 0.001, 2);
    await directory.resolve('alias/a', trace);
    await expect(directory.resolve('alias/missing', trace)).rejects.toMatchObject({ code: 'KeyNotFound' });
    await sleep(30);
    expect(await directory.resolve('alias/a', trace)).toBe('arn:aws:kms:r:1:key/k');
    expect(state.calls).toBe(3);
    await expect(directory.resolve('alias/missing', trace)).rejects.toBeInstanceOf(KmsBudgetExceededError);
    expect(state.calls).toBe(3);
  });

  it("a look-up refused for lack of budget is not started, so no other principal's request inherits the refusal", async () => {
    const { provider, state } = fakeProvider();
    const directory = new KeyDirectory(provider);
    const broke = billed('a', 1, 1);
    broke.charge('Decrypt');
    const [refused, served] = await Promise.allSettled([directory.resolve('alias/a', broke), directory.resolve('alias/a', billed('b', 1, 1))]);
    expect(refused).toMatchObject({ status: 'rejected', reason: expect.any(KmsBudgetExceededError) });
    expect(served).toEqual({ status: 'fulfilled', value: 'arn:aws:kms:r:1:key/k' });
    expect(state.calls).toBe(1);
  });

  it("a known key's refresh and the alias list run in the directory's own queue, never in the asking principal's", async () => {
    const { provider, state } = fakeProvider();
    const directory = new KeyDirectory(provider, { ttlMs: 20, lookups: new KmsQueue({ concurrency: 1, pacePerSecond: 1_000 }) });
    // A principal whose KMS turn never comes (its queue full and paced far behind).
    const stuck = new KmsTrace();
    stuck.billTo('stuck', { charge: () => {}, inTurn: () => new Promise<never>(() => {}) });
    await directory.resolve('alias/a', billed('a', 1, 10));
    await sleep(30);
    expect(await directory.resolve('alias/a', stuck)).toBe('arn:aws:kms:r:1:key/k');
    expect(await directory.namesOf('arn:aws:kms:r:1:key/k', stuck)).toContain('alias/a');
    expect(state.calls).toBe(2);
  });
});

