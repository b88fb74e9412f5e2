/**
 * The cache policy, with a counted key source and an injected clock: age, message and byte
 * caps, capacity, single-flight, and zeroing of every key that leaves the cache.
 * (Single-flight against real KMS is tested over HTTP in test/http/cache.test.ts.)
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DataKeyCache, type CacheKind, type CacheLimits, type DataKeyMaterial, type EvictionReason } from '../../src/keys/data-key-cache.js';

class Recorder {
  hits = 0;
  misses = 0;
  evictions: EvictionReason[] = [];
  hit(_kind: CacheKind) {
    this.hits++;
  }
  miss(_kind: CacheKind) {
    this.misses++;
  }
  evicted(_kind: CacheKind, reason: EvictionReason) {
    this.evictions.push(reason);
  }
}

function setup(limits: Partial<CacheLimits> = {}, kind: CacheKind = 'encrypt') {
  let time = 1_000_000;
  const issued: Buffer[] = [];
  let calls = 0;
  const recorder = new Recorder();
  const cache = new DataKeyCache(kind, { maxAgeMs: 60_000, maxMessages: 1_000, maxBytes: 1 << 30, capacity: 100, ...limits }, recorder, () => time);
  const fetch = async (): Promise<DataKeyMaterial> => {
    calls++;
    await new Promise((resolve) => setTimeout(resolve, 5));
    const plaintextKey = randomBytes(32);
    issued.push(plaintextKey);
    return { keyArn: 'arn:key', plaintextKey, wrappedKey: randomBytes(64), requestId: `req-${calls}` };
  };
  const use = (partition = 'p', bytes = 1) => cache.use(partition, bytes, fetch, (key) => ({ id: key.entry.dataKeyId, hit: key.cacheHit, request: key.entry.kmsRequestId }));
  return { cache, use, recorder, issued, calls: () => calls, advance: (ms: number) => (time += ms) };
}

const zeroed = (key: Buffer) => key.every((byte) => byte === 0);

describe('data-key cache', () => {
  it('reuses one key within its limits and reports the KMS request that made it', async () => {
    const { use, calls } = setup();
    const first = await use();
    const second = await use();
    expect(calls()).toBe(1);
    expect(second.id).toBe(first.id);
    expect([first.hit, second.hit]).toEqual([false, true]);
    expect(second.request).toBe('req-1');
  });

  it('message cap: cap 10, 25 encrypts, 3 GenerateDataKey calls, exhausted keys zeroed', async () => {
    const { use, calls, issued, recorder } = setup({ maxMessages: 10 });
    for (let i = 0; i < 25; i++) await use();
    expect(calls()).toBe(3);
    expect(zeroed(issued[0]!)).toBe(true);
    expect(zeroed(issued[1]!)).toBe(true);
    expect(zeroed(issued[2]!)).toBe(false);
    expect(recorder.evictions.filter((reason) => reason === 'messages')).toHaveLength(2);
  });

  it('message cap holds under concurrency: 25 at once with cap 10 still make 3 calls', async () => {
    const { use, calls } = setup({ maxMessages: 10 });
    await Promise.all(Array.from({ length: 25 }, () => use()));
    expect(calls()).toBe(3);
  });

  it('byte cap: a key never protects more than maxBytes', async () => {
    const { use, calls, recorder } = setup({ maxBytes: 1000 });
    await use('p', 600);
    await use('p', 300);
    expect(calls()).toBe(1);
    await use('p', 200); // 1100 > 1000: new key
    expect(calls()).toBe(2);
    expect(recorder.evictions).toContain('bytes');
  });

  it('byte cap: a message larger than the cap gets a one-off key that is never cached', async () => {
    const { use, calls, issued, cache } = setup({ maxBytes: 100 });
    await use('p', 101);
    await use('p', 101);
    expect(calls()).toBe(2);
    expect(issued.every(zeroed)).toBe(true);
    expect(cache.size).toBe(0);
  });

  it('age: a key is not used at or past maxAge, and is zeroed', async () => {
    const { use, calls, issued, advance, recorder } = setup({ maxAgeMs: 1_000 });
    await use();
    advance(999);
    await use();
    expect(calls()).toBe(1);
    advance(1);
    await use();
    expect(calls()).toBe(2);
    expect(zeroed(issued[0]!)).toBe(true);
    expect(recorder.evictions).toContain('age');
  });

  it('capacity: the least recently used partition is evicted and zeroed', async () => {
    const { use, calls, issued, recorder, cache } = setup({ capacity: 2 });
    await use('a');
    await use('b');
    await use('a');
    await use('c'); // evicts b
    expect(cache.size).toBe(2);
    expect(zeroed(issued[1]!)).toBe(true);
    expect(zeroed(issued[0]!)).toBe(false);
    expect(recorder.evictions).toEqual(['capacity']);
    await use('b');
    expect(calls()).toBe(4);
  });

  it('single-flight: 100 concurrent cold requests make one call, and all are served', async () => {
    const { use, calls, recorder } = setup();
    const results = await Promise.all(Array.from({ length: 100 }, () => use()));
    expect(calls()).toBe(1);
    expect(new Set(results.map((result) => result.id)).size).toBe(1);
    expect(results.filter((result) => !result.hit)).toHaveLength(1);
    expect(recorder.misses).toBe(1);
    expect(recorder.hits).toBe(99);
  });

  it('single-flight is per partition', async () => {
    const { use, calls } = setup();
    await Promise.all([...Array.from({ length: 10 }, () => use('a')), ...Array.from({ length: 10 }, () => use('b'))]);
    expect(calls()).toBe(2);
  });

  it('a failed KMS call fails every waiter and is retried by the next request', async () => {
    const recorder = new Recorder();
    const cache = new DataKeyCache('encrypt', { maxAgeMs: 60_000, maxMessages: 10, maxBytes: 1 << 20, capacity: 10 }, recorder);
    let calls = 0;
    const failing = async (): Promise<DataKeyMaterial> => {
      calls++;
      await new Promise((resolve) => setTimeout(resolve, 5));
      throw new Error('kms down');
    };
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => cache.use('p', 1, failing, () => 'ok')));
    expect(outcomes.every((outcome) => outcome.status === 'rejected')).toBe(true);
    expect(calls).toBe(1);
    await expect(cache.use('p', 1, failing, () => 'ok')).rejects.toThrow('kms down');
    expect(calls).toBe(2);
  });

  it('clear() zeroes every key', async () => {
    const { use, issued, cache } = setup();
    await use('a');
    await use('b');
    cache.clear();
    expect(issued.every(zeroed)).toBe(true);
    expect(cache.size).toBe(0);
  });

  it('decrypt entries are bounded by age and capacity but not by message count', async () => {
    const { use, calls } = setup({ maxMessages: 2 }, 'decrypt');
    for (let i = 0; i < 10; i++) await use();
    expect(calls()).toBe(1);
  });
});

describe('data-key cache shares between principals', () => {
  function shared(capacity: number, minShare?: number) {
    const recorder = new Recorder();
    const cache = new DataKeyCache('encrypt', { maxAgeMs: 60_000, maxMessages: 1_000, maxBytes: 1 << 30, capacity, ...(minShare === undefined ? {} : { minShare }) }, recorder);
    const issued = new Map<string, Buffer>();
    const charges: string[] = [];
    const use = (owner: string, partition: string) =>
      cache.use(
        partition,
        1,
        async () => {
          const plaintextKey = randomBytes(32);
          issued.set(partition, plaintextKey);
          return { keyArn: 'arn:key', plaintextKey, wrappedKey: randomBytes(64), requestId: `req-${partition}` };
        },
        (key) => key.cacheHit,
        { owner, charge: () => void charges.push(owner), inTurn: (send) => send() },
      );
    return { cache, use, issued, charges, recorder };
  }

  it("a flood of new partitions evicts only the flooder's own keys (zeroed), never another principal's", async () => {
    const { cache, use, issued, recorder } = shared(10);
    for (const partition of ['billing-1', 'billing-2', 'billing-3']) expect(await use('billing', partition)).toBe(false);
    for (let i = 0; i < 200; i++) await use('flooder', `flood-${i}`);
    expect(cache.size).toBe(10);
    for (const partition of ['billing-1', 'billing-2', 'billing-3']) expect(await use('billing', partition)).toBe(true);
    expect(recorder.evictions).toHaveLength(193);
    expect(recorder.evictions.every((reason) => reason === 'capacity')).toBe(true);
    // Every evicted flood key was zeroed; the 7 the flooder still holds were not.
    const floodKeys = [...issued].filter(([partition]) => partition.startsWith('flood-')).map(([, key]) => key);
    expect(floodKeys.filter((key) => key.every((byte) => byte === 0))).toHaveLength(193);
  });

  it("within an owner's share, the least recently used key goes first: a key in use survives the owner's own churn", async () => {
    const { use } = shared(4);
    for (const partition of ['hot', 'a', 'b', 'c']) await use('svc', partition);
    for (let i = 0; i < 6; i++) {
      expect(await use('svc', 'hot')).toBe(true);
      await use('svc', `new-${i}`);
    }
    expect(await use('svc', 'hot')).toBe(true);
    expect(await use('svc', 'a')).toBe(false);
  });

  it('an owner holding no more than minShare keeps every key, even above its fair share; others make room from their own', async () => {
    const { use } = shared(40, 30);
    const working = Array.from({ length: 30 }, (_, i) => `reports-${i}`);
    for (const partition of working) await use('reports', partition);
    for (let i = 0; i < 40; i++) await use('tenant:b', `b-${i}`);
    const hits = await Promise.all(working.map((partition) => use('reports', partition)));
    expect(hits.filter(Boolean)).toHaveLength(30);
    // Without the guarantee, the largest owner gives way down to the fair share (20 of 40).
    const fair = shared(40);
    for (const partition of working) await fair.use('reports', partition);
    for (let i = 0; i < 40; i++) await fair.use('tenant:b', `b-${i}`);
    expect((await Promise.all(working.map((partition) => fair.use('reports', partition)))).filter(Boolean)).toHaveLength(20);
  });

  it("an owner's first key gets in when every owner is within its share (capacity over-committed)", async () => {
    const { use, cache } = shared(4, 2);
    for (const [owner, partition] of [['a', 'a1'], ['a', 'a2'], ['b', 'b1'], ['b', 'b2']] as const) await use(owner, partition);
    expect(await use('c', 'c1')).toBe(false);
    expect(await use('c', 'c1')).toBe(true);
    expect(cache.size).toBe(4);
  });

  it('a cached entry serves every principal, and only its owner pays for it (once)', async () => {
    const { use, charges } = shared(10);
    const first = await Promise.all([use('billing', 'p'), use('billing', 'p'), use('flooder', 'p')]);
    expect(first).toEqual([false, true, true]);
    expect(charges).toEqual(['billing']);
  });

  it("a refused charge starts no KMS call and is not inherited by another principal's request", async () => {
    const recorder = new Recorder();
    const cache = new DataKeyCache('encrypt', { maxAgeMs: 60_000, maxMessages: 1_000, maxBytes: 1 << 30, capacity: 10 }, recorder);
    let fetches = 0;
    const fetch = async (): Promise<DataKeyMaterial> => {
      fetches++;
      return { keyArn: 'arn:key', plaintextKey: randomBytes(32), wrappedKey: randomBytes(64), requestId: 'r' };
    };
    const broke = { owner: 'flooder', charge: () => { throw new Error('over budget'); }, inTurn: <T>(send: () => Promise<T>) => send() };
    const payer = { owner: 'billing', charge: () => {}, inTurn: <T>(send: () => Promise<T>) => send() };
    const [refused, served] = await Promise.allSettled([cache.use('p', 1, fetch, () => 'ok', broke), cache.use('p', 1, fetch, () => 'ok', payer)]);
    expect(refused).toMatchObject({ status: 'rejected' });
    expect(served).toEqual({ status: 'fulfilled', value: 'ok' });
    expect(fetches).toBe(1);
  });

  it('a charge answered later (a fleet budget in Redis): requests coalesce on it meanwhile, and one it refuses is not inherited', async () => {
    const recorder = new Recorder();
    const cache = new DataKeyCache('encrypt', { maxAgeMs: 60_000, maxMessages: 1_000, maxBytes: 1 << 30, capacity: 10 }, recorder);
    let fetches = 0;
    const fetch = async (): Promise<DataKeyMaterial> => {
      fetches++;
      return { keyArn: 'arn:key', plaintextKey: randomBytes(32), wrappedKey: randomBytes(64), requestId: 'r' };
    };
    const charges: string[] = [];
    const later = (owner: string, allowed: boolean) => ({
      owner,
      charge: async () => {
        charges.push(owner);
        await new Promise((resolve) => setTimeout(resolve, 5));
        if (!allowed) throw new Error('over the fleet budget');
      },
      inTurn: <T>(send: () => Promise<T>) => send(),
    });
    // Three requests of one payer while its charge is pending: one charge, one KMS call.
    const same = await Promise.all([1, 2, 3].map(() => cache.use('p', 1, fetch, (key) => key.cacheHit, later('billing', true))));
    expect(same).toEqual([false, true, true]);
    expect(charges).toEqual(['billing']);
    expect(fetches).toBe(1);
    // The flooder's charge is refused: the billing request that coalesced on it is served on its own budget.
    charges.length = 0;
    const [refused, served] = await Promise.allSettled([
      cache.use('q', 1, fetch, () => 'ok', later('flooder', false)),
      cache.use('q', 1, fetch, () => 'ok', later('billing', true)),
    ]);
    expect(refused).toMatchObject({ status: 'rejected', reason: { message: 'over the fleet budget' } });
    expect(served).toEqual({ status: 'fulfilled', value: 'ok' });
    expect(charges).toEqual(['flooder', 'billing']);
    expect(fetches).toBe(2);
  });
});

describe('data-key cache shares and expired entries', () => {
  it('a full cache of expired keys (not yet purged by the timer) makes room without stalling, as age evictions', async () => {
    const { use, advance, recorder, cache, issued } = setup({ capacity: 2 });
    await use('p1');
    await use('p2');
    advance(61_000);
    await use('p3');
    expect(cache.size).toBeLessThanOrEqual(2);
    expect(recorder.evictions).toContain('age');
    expect(recorder.evictions).not.toContain('capacity');
    expect(issued[0]!.every((byte) => byte === 0)).toBe(true);
  }, 5_000);
});

/**
 * seed(): a key the encrypt side obtained, offered to the decrypt cache (read your writes
 * without KMS). It lives there under the decrypt cache's own limits and owner accounting, as a
 * copy the decrypt cache zeroes itself.
 */
describe('data-key cache: seeded keys', () => {
  function decryptCache(limits: Partial<CacheLimits> = {}) {
    let time = 1_000_000;
    const recorder = new Recorder();
    const cache = new DataKeyCache('decrypt', { maxAgeMs: 60_000, maxMessages: 1_000, maxBytes: 1 << 30, capacity: 100, ...limits }, recorder, () => time);
    let fetches = 0;
    const fetch = async (): Promise<DataKeyMaterial> => {
      fetches++;
      return { keyArn: 'arn:key', plaintextKey: randomBytes(32), wrappedKey: randomBytes(64), requestId: `decrypt-${fetches}` };
    };
    /** The source as the encrypt cache holds it, created `ageMs` ago. */
    const source = (ageMs = 0) => ({
      keyArn: 'arn:key',
      plaintextKey: randomBytes(32),
      wrappedKey: randomBytes(64),
      kmsRequestId: 'generate-1',
      createdAt: time - ageMs,
      destroyed: false,
    });
    /** A decrypt on `partition`: the key buffer it was served (the cache's own), and how. */
    const decrypt = (partition: string, owner = 'reader') =>
      cache.use(partition, 0, fetch, (key) => ({ key: key.entry.plaintextKey, bytes: Buffer.from(key.entry.plaintextKey), hit: key.cacheHit, request: key.entry.kmsRequestId }), {
        owner,
        charge: () => {},
        inTurn: (send) => send(),
      });
    return { cache, recorder, source, decrypt, fetches: () => fetches, advance: (ms: number) => (time += ms) };
  }

  it('serves a decrypt with no KMS call, from its own copy of the key (the source zeroed does not touch it)', async () => {
    const { cache, source, decrypt, fetches } = decryptCache();
    const key = source();
    const original = Buffer.from(key.plaintextKey);
    expect(cache.seed('p', key, 'writer')).toBeDefined();
    key.plaintextKey.fill(0);
    const served = await decrypt('p');
    expect(fetches()).toBe(0);
    expect(served.hit).toBe(true);
    expect(served.bytes.equals(original)).toBe(true);
    expect(served.key).not.toBe(key.plaintextKey);
    expect(served.request).toBe('generate-1');
  });

  it('takes nothing over a cached entry, and nothing destroyed', async () => {
    const { cache, source, decrypt } = decryptCache();
    const first = await decrypt('p');
    expect(cache.seed('p', source(), 'writer')).toBeUndefined();
    expect((await decrypt('p')).bytes.equals(first.bytes)).toBe(true);
    expect(cache.seed('q', { ...source(), destroyed: true }, 'writer')).toBeUndefined();
    expect(cache.size).toBe(1);
  });

  it('age: counted from when KMS produced the key, not from the seed; then the copy is zeroed and a decrypt calls KMS', async () => {
    const { cache, source, decrypt, fetches, advance, recorder } = decryptCache({ maxAgeMs: 60_000 });
    expect(cache.seed('expired', source(60_000), 'writer')).toBeUndefined();
    expect(cache.seed('p', source(50_000), 'writer')).toBeDefined();
    const served = await decrypt('p');
    expect(fetches()).toBe(0);
    advance(10_000);
    await decrypt('p');
    expect(fetches()).toBe(1);
    expect(served.key.every((byte) => byte === 0)).toBe(true);
    expect(recorder.evictions).toEqual(['age']);
  });

  it('use: a seeded key serves decrypts past the encrypt cap (the decrypt cache counts no messages)', async () => {
    const { cache, source, decrypt, fetches } = decryptCache({ maxMessages: 2 });
    cache.seed('p', source(), 'writer');
    for (let i = 0; i < 5; i++) expect((await decrypt('p')).hit).toBe(true);
    expect(fetches()).toBe(0);
  });

  it("capacity and owners: a writer's seeds are charged to the writer and evict only its own keys (zeroed)", async () => {
    const { cache, source, decrypt, recorder } = decryptCache({ capacity: 4, minShare: 2 });
    const others = [await decrypt('r1', 'reader'), await decrypt('r2', 'reader')];
    const seeded: Buffer[] = [];
    for (let i = 0; i < 6; i++) {
      expect(cache.seed(`w${i}`, source(), 'writer')).toBeDefined();
      seeded.push((await decrypt(`w${i}`, 'writer')).key);
    }
    expect(cache.size).toBe(4);
    const owners = cache.view().map((entry) => [entry.partition, entry.owner]);
    expect(owners).toEqual(expect.arrayContaining([['r1', 'reader'], ['r2', 'reader'], ['w4', 'writer'], ['w5', 'writer']]));
    for (const other of others) expect(other.key.some((byte) => byte !== 0)).toBe(true);
    for (const key of seeded.slice(0, 4)) expect(key.every((byte) => byte === 0)).toBe(true);
    expect(recorder.evictions).toEqual(['capacity', 'capacity', 'capacity', 'capacity']);
  });

  it('evictWhere and clear() zero seeded copies', async () => {
    const { cache, source, decrypt } = decryptCache();
    cache.seed('a', source(), 'writer');
    cache.seed('b', source(), 'writer');
    const [a, b] = [(await decrypt('a')).key, (await decrypt('b')).key];
    expect(cache.evictWhere((partition) => partition === 'a')).toBe(1);
    expect(a.every((byte) => byte === 0)).toBe(true);
    cache.clear();
    expect(b.every((byte) => byte === 0)).toBe(true);
  });
});
