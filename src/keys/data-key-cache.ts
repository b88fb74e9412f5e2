/**
 * The data-key cache policy: lru-cache holds the entries (capacity, TTL, dispose); this file
 * adds what is ours:
 *
 * - usage caps: an encryption key is never used past maxMessages or maxBytes (checked and
 *   charged synchronously, so concurrent requests cannot overshoot a cap);
 * - single-flight: concurrent misses for one partition share one KMS call (the AWS Encryption
 *   SDK's caching manager makes one call per miss);
 * - zeroing: a plaintext key is overwritten with zeros the moment its entry leaves the cache,
 *   whatever the reason (age, caps, capacity, shutdown);
 * - shares: every entry belongs to the group whose request fetched it (its owner: the
 *   principal's tenant, or the principal alone; authz/principal-key.ts tenantKey), so minting
 *   principals buys a tenant no more of the cache. When the cache is full, the entry to go is
 *   a least recently used entry of the owner holding the most entries above `minShare`; if
 *   none holds more, of the owner making room itself; only an owner's very first key may then
 *   take one from the largest owner. So an owner flooding the cache with new partitions only
 *   ever evicts its own keys, one holding no more than the larger of `minShare` and its fair
 *   share (capacity divided by the owners present) is never evicted by another's traffic.
 *   Recency within an owner is second-chance (CLOCK): a hit only sets a flag, so the hot path
 *   pays no re-ordering. Entries are still shared: any authorized request for a partition uses
 *   the key there, whoever fetched it (a key another owner's flood can evict is one that
 *   flooder fetched itself).
 *
 * Keys are only ever used inside `use()`'s synchronous callback, after a synchronous check
 * that the entry is still alive. An `await` between the check and the use would let another
 * request evict (and zero) the key in between.
 */
import { hash } from 'node:crypto';
import { LRUCache } from 'lru-cache';

export type CacheKind = 'encrypt' | 'decrypt';
/** `evicted`: dropped on request (POST /v1/admin/cache/evict). */
export type EvictionReason = 'age' | 'messages' | 'bytes' | 'capacity' | 'evicted';

export interface CacheLimits {
  maxAgeMs: number;
  /** Encryption only: messages one data key may protect. */
  maxMessages: number;
  /** Encryption only: plaintext bytes one data key may protect. */
  maxBytes: number;
  capacity: number;
  /** Entries each owner keeps whatever other owners fetch (CACHE_MIN_SHARE_PERCENT of capacity; default 0). */
  minShare?: number;
}

export interface CacheObserver {
  hit(kind: CacheKind): void;
  miss(kind: CacheKind): void;
  evicted(kind: CacheKind, reason: EvictionReason): void;
}

/** What the cache needs from KMS to fill an entry. The cache takes ownership of the key. */
export interface DataKeyMaterial {
  keyArn: string;
  plaintextKey: Buffer;
  wrappedKey: Buffer;
  requestId: string;
  /** A key set's data key: every KMS call that made it, and what the caller wants kept with it. */
  requestIds?: string[];
  details?: unknown;
  /** Shorter than the cache's maxAgeMs (a key set's data key missing some of its keys). */
  maxAgeMs?: number;
}

/**
 * The request asking for a key: who owns an entry it creates, and the charge for the KMS call
 * it would make (called synchronously before that call starts; throwing refuses it, and then
 * nothing is in flight that other requests could wait on). A charge kept in Redis answers with
 * a promise: requests for the same partition coalesce on the fetch meanwhile, and if the
 * charge is refused they do not inherit the refusal (it is the requester's budget, not
 * theirs): each tries again, on its own budget.
 */
export interface CacheRequester {
  readonly owner: string;
  charge(): void | Promise<void>;
  /** Runs the fetch when the requester's turn for a KMS call comes. */
  inTurn<T>(send: () => Promise<T>): Promise<T>;
}

/** A seeded copy as its seeder sees it: whether the cache still holds it. */
export type SeededCopy = Pick<CachedDataKey, 'destroyed'>;

const NOBODY: CacheRequester = { owner: '', charge: () => {}, inTurn: (send) => send() };

export class CachedDataKey {
  messages = 0;
  bytes = 0;
  destroyed = false;
  /** Why the entry left the cache, once it has. */
  evictedFor: EvictionReason | undefined;
  /** Used since it was last queued in its owner's eviction order (second chance). */
  recentlyUsed = false;
  /** Requests this entry served without a KMS call of their own. */
  hits = 0;
  /** Per-entry derived state the caller wants to keep (e.g. the serialised header prefix). */
  attachment: unknown;
  /** What the fetch returned beside the key (a key set's wrapped keys). */
  details: unknown;
  /** Every KMS request behind this key when more than one made it (a key set's). */
  kmsRequestIds: readonly string[] = [];
  /** Age limit of this entry, when shorter than the cache's. */
  maxAgeMs: number | undefined;
  readonly dataKeyId: string;

  constructor(
    readonly keyArn: string,
    readonly plaintextKey: Buffer,
    readonly wrappedKey: Buffer,
    /** The KMS request that produced this key: what CloudTrail recorded. */
    readonly kmsRequestId: string,
    readonly createdAt: number,
    /** The principal whose request fetched this key (its cache share is charged). */
    readonly owner = '',
  ) {
    this.dataKeyId = dataKeyIdOf(wrappedKey);
  }

  destroy(): void {
    this.plaintextKey.fill(0);
    this.destroyed = true;
  }
}

/** What seed() copies from a live key of another cache. */
export type SeedKey = Pick<CachedDataKey, 'keyArn' | 'plaintextKey' | 'wrappedKey' | 'kmsRequestId' | 'createdAt' | 'destroyed'>;

/** A stable, non-secret name for a data key: the first 128 bits of SHA-256(wrapped key). */
export function dataKeyIdOf(wrappedKey: Buffer): string {
  return hash('sha256', wrappedKey, 'hex').slice(0, 32);
}

/** One live entry as the admin API sees it: counters only, never the key. */
export interface CacheEntryView {
  readonly partition: string;
  readonly keyArn: string;
  readonly owner: string;
  readonly ageMs: number;
  readonly messages: number;
  readonly bytes: number;
  readonly hits: number;
}

/** How a request obtained its key, for metrics and the audit trail. */
export interface KeyUse {
  entry: CachedDataKey;
  /** True when this request made no KMS call of its own (a cached or coalesced key). */
  cacheHit: boolean;
  /** True when the request waited on another request's KMS call. */
  coalesced: boolean;
}

const MAX_THRASH = 3;

function withDetails(entry: CachedDataKey, material: DataKeyMaterial): CachedDataKey {
  entry.details = material.details;
  if (material.requestIds) entry.kmsRequestIds = material.requestIds;
  entry.maxAgeMs = material.maxAgeMs;
  return entry;
}

export class DataKeyCache {
  private readonly entries: LRUCache<string, CachedDataKey>;
  /** Each owner's entries in eviction order, oldest queued first (a Map keeps insertion order). */
  private readonly byOwner = new Map<string, Map<string, CachedDataKey>>();
  private readonly inFlight = new Map<string, Promise<CachedDataKey>>();
  /** Refusals of an asynchronous charge: a request that coalesced on that fetch tries again. */
  private readonly refusedCharges = new WeakSet<object>();
  /** Set just before an explicit delete so dispose() can report the true reason. */
  private pendingReason: EvictionReason | undefined;
  /** Requests served since start, with and without a KMS call of their own (hit rate). */
  private readonly served = { hits: 0, misses: 0 };

  constructor(
    readonly kind: CacheKind,
    private readonly limits: CacheLimits,
    private readonly observer: CacheObserver,
    private readonly now: () => number = Date.now,
  ) {
    this.entries = new LRUCache<string, CachedDataKey>({
      max: limits.capacity,
      ttl: limits.maxAgeMs,
      // Expired keys are purged on a timer, not just when next read: a plaintext key must not
      // sit in memory past its age limit because its partition went quiet.
      ttlAutopurge: true,
      perf: { now },
      dispose: (entry, partition, reason) => {
        const why = this.pendingReason ?? (reason === 'expire' ? 'age' : 'capacity');
        entry.evictedFor = why;
        this.forget(entry.owner, partition);
        entry.destroy();
        this.observer.evicted(this.kind, why);
      },
    });
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * Runs `use` with a live data key for `partition`, charging `bytes` against its caps.
   * `fetch` is called at most once per partition at a time, however many requests miss.
   * When a single message is larger than the byte cap, a one-off key is fetched, used and
   * zeroed without being cached (as the AWS Encryption SDK does). So is every encryption key
   * when maxMessages is 1: such a key can never serve a second message, and coalescing would
   * only queue concurrent requests behind one another's KMS calls, one round trip after
   * another.
   */
  async use<T>(
    partition: string,
    bytes: number,
    fetch: () => Promise<DataKeyMaterial>,
    use: (key: KeyUse) => T,
    requester: CacheRequester = NOBODY,
  ): Promise<T> {
    if (bytes > this.limits.maxBytes || (this.kind === 'encrypt' && this.limits.maxMessages === 1)) return this.useOnce(fetch, use, requester);
    let initiated = false;
    let waited = false;
    let thrashed = 0;
    // Each pass either serves this request or waits for a KMS call that serves at least the
    // first request to wake up, so the loop always makes progress. The only unbounded case is
    // an entry evicted by capacity before its waiters wake; that is bounded by MAX_THRASH.
    while (thrashed < MAX_THRASH) {
      const cached = this.entries.get(partition);
      if (cached) cached.recentlyUsed = true;
      if (cached && this.reserve(partition, cached, bytes)) {
        return this.run(partition, { entry: cached, cacheHit: !initiated, coalesced: waited && !initiated }, use);
      }
      const pending = this.inFlight.get(partition);
      if (pending) waited = true;
      else initiated = true;
      let entry: CachedDataKey;
      try {
        entry = await (pending ?? this.startFetch(partition, fetch, requester));
      } catch (error) {
        // Another requester's budget refused its charge: not this request's refusal.
        if (pending && typeof error === 'object' && error !== null && this.refusedCharges.has(error)) continue;
        throw error;
      }
      // Back from the await: re-check synchronously before touching the key.
      if (this.reserve(partition, entry, bytes)) {
        return this.run(partition, { entry, cacheHit: !initiated, coalesced: !initiated }, use);
      }
      if (entry.evictedFor === 'capacity') thrashed++;
    }
    // The cache is thrashing (capacity far below the number of live partitions): stay
    // correct and serve this request with a key of its own.
    return this.useOnce(fetch, use, requester);
  }

  /** True when `partition` holds a live key now (a hit, unless it is evicted before use). */
  holds(partition: string): boolean {
    const entry = this.entries.get(partition);
    return entry !== undefined && !entry.destroyed;
  }

  /**
   * Caches a copy of a key obtained elsewhere (the encrypt side's), as if this cache had
   * fetched it: under this cache's own limits and capacity, owned and charged to `owner`, aged
   * from the source's creation (when KMS produced it). The caller's buffer stays the caller's; this cache
   * zeroes its own copy. Nothing happens when the partition is already cached or being
   * fetched, or when the key is already past this cache's age limit. No KMS call, no hit or
   * miss counted. Returns the copy (seen only as alive or not: while it is alive, seeding the
   * same key again would do nothing), or undefined when the key was not taken.
   */
  seed(partition: string, source: SeedKey, owner: string): SeededCopy | undefined {
    if (source.destroyed || this.entries.has(partition) || this.inFlight.has(partition)) return undefined;
    if (this.now() - source.createdAt >= this.limits.maxAgeMs) return undefined;
    const plaintextKey = Buffer.alloc(source.plaintextKey.length);
    source.plaintextKey.copy(plaintextKey);
    const entry = new CachedDataKey(source.keyArn, plaintextKey, Buffer.from(source.wrappedKey), source.kmsRequestId, source.createdAt, owner);
    this.store(partition, entry);
    return entry;
  }

  /** Removes every entry, zeroing every key (shutdown). */
  clear(): void {
    this.entries.clear();
  }

  get limitsInForce(): Readonly<CacheLimits> {
    return this.limits;
  }

  /** Requests served since start: from the cache (hits) and with a KMS call (misses). */
  get counts(): { hits: number; misses: number } {
    return { ...this.served };
  }

  /** The live entries, without their keys. */
  view(): CacheEntryView[] {
    const now = this.now();
    const views: CacheEntryView[] = [];
    for (const [partition, entry] of this.entries.entries()) {
      if (entry.destroyed) continue;
      const { keyArn, owner, messages, bytes, hits } = entry;
      views.push({ partition, keyArn, owner, ageMs: Math.max(0, now - entry.createdAt), messages, bytes, hits });
    }
    return views;
  }

  /**
   * Drops (and zeroes) every entry whose partition `matches`; returns how many. An in-flight
   * fetch is not cancelled: its key lands afterwards, as a fresh entry.
   */
  evictWhere(matches: (partition: string, entry: CachedDataKey) => boolean): number {
    const victims = [...this.entries.entries()].filter(([partition, entry]) => matches(partition, entry));
    for (const [partition, entry] of victims) this.evict(partition, entry, 'evicted');
    return victims.length;
  }

  private startFetch(partition: string, fetch: () => Promise<DataKeyMaterial>, requester: CacheRequester): Promise<CachedDataKey> {
    const charged = requester.charge();
    const fetched = charged
      ? charged.then(
          () => requester.inTurn(fetch),
          (error: unknown) => {
            if (typeof error === 'object' && error !== null) this.refusedCharges.add(error);
            throw error;
          },
        )
      : requester.inTurn(fetch);
    const promise = fetched
      .then((material) => {
        const entry = withDetails(
          new CachedDataKey(material.keyArn, material.plaintextKey, material.wrappedKey, material.requestId, this.now(), requester.owner),
          material,
        );
        this.store(partition, entry);
        return entry;
      })
      .finally(() => this.inFlight.delete(partition));
    this.inFlight.set(partition, promise);
    return promise;
  }

  /** Caches `entry`, first making room at the expense of the owner that must give way (victimOf). */
  private store(partition: string, entry: CachedDataKey): void {
    if (this.entries.has(partition)) this.evict(partition, this.entries.peek(partition)!, 'capacity');
    while (this.entries.size >= this.limits.capacity) {
      const before = this.entries.size;
      const victim = this.victimOf(entry.owner);
      // Never loop without progress; lru-cache's own bound (max) still holds if this stops.
      if (victim === undefined || !this.evictOldest(victim) || this.entries.size >= before) break;
    }
    // The purge timer counts from the key's creation, not from this set (a seeded key is older);
    // a key set's key missing some keys has a shorter age limit of its own.
    const maxAgeMs = entry.maxAgeMs === undefined ? this.limits.maxAgeMs : Math.min(entry.maxAgeMs, this.limits.maxAgeMs);
    this.entries.set(partition, entry, { ttl: Math.max(1, maxAgeMs - (this.now() - entry.createdAt)) });
    const own = this.byOwner.get(entry.owner) ?? new Map<string, CachedDataKey>();
    own.set(partition, entry);
    this.byOwner.set(entry.owner, own);
  }

  /**
   * Evicts the owner's least recently used entry, second-chance style: an entry used since it
   * was queued goes to the back once (flag cleared) instead. Every entry is moved at most
   * once per call, so this ends within one pass.
   */
  private evictOldest(owner: string): boolean {
    const own = this.byOwner.get(owner);
    if (!own) return false;
    for (const [partition, entry] of own) {
      // Expired, but its purge timer has not run yet (a busy event loop): it goes first, for age.
      if (this.now() - entry.createdAt >= this.limits.maxAgeMs) {
        this.evict(partition, entry, 'age');
        return true;
      }
      if (entry.recentlyUsed) {
        entry.recentlyUsed = false;
        own.delete(partition);
        own.set(partition, entry);
        continue;
      }
      this.evict(partition, entry, 'capacity');
      return true;
    }
    return false;
  }

  /**
   * Whose key goes to make room for one of `inserter`'s: the owner holding the most above its
   * guaranteed share; if none does, the inserter's own; for an inserter holding nothing yet
   * (the cache over-committed: more owners than capacity / minShare), the largest owner's.
   */
  private victimOf(inserter: string): string | undefined {
    const overShare = this.largestOwner(inserter, this.limits.minShare ?? 0);
    if (overShare !== undefined) return overShare;
    if (this.byOwner.has(inserter)) return inserter;
    return this.largestOwner(inserter, 0);
  }

  /** The owner with the most entries, more than `above`; `preferred` (the one inserting) wins a tie. */
  private largestOwner(preferred: string, above: number): string | undefined {
    let largest: string | undefined;
    let most = above;
    for (const [owner, partitions] of this.byOwner) {
      if (partitions.size > most || (partitions.size === most && most > above && owner === preferred)) {
        largest = owner;
        most = partitions.size;
      }
    }
    return largest;
  }

  private forget(owner: string, partition: string): void {
    const own = this.byOwner.get(owner);
    if (own?.delete(partition) && own.size === 0) this.byOwner.delete(owner);
  }

  /** Checks the entry is alive and within its caps, and charges this message to it. */
  private reserve(partition: string, entry: CachedDataKey, bytes: number): boolean {
    if (entry.destroyed) return false;
    if (this.now() - entry.createdAt >= Math.min(this.limits.maxAgeMs, entry.maxAgeMs ?? Infinity)) {
      this.evict(partition, entry, 'age');
      return false;
    }
    if (this.kind === 'encrypt') {
      if (entry.messages + 1 > this.limits.maxMessages) {
        this.evict(partition, entry, 'messages');
        return false;
      }
      if (entry.bytes + bytes > this.limits.maxBytes) {
        this.evict(partition, entry, 'bytes');
        return false;
      }
    }
    entry.messages += 1;
    entry.bytes += bytes;
    return true;
  }

  private run<T>(partition: string, key: KeyUse, use: (key: KeyUse) => T): T {
    if (key.cacheHit) {
      key.entry.hits += 1;
      this.served.hits += 1;
      this.observer.hit(this.kind);
    } else {
      this.served.misses += 1;
      this.observer.miss(this.kind);
    }
    try {
      return use(key);
    } finally {
      // A key that has reached its message cap will never serve again: zero it now.
      if (this.kind === 'encrypt' && key.entry.messages >= this.limits.maxMessages) {
        this.evict(partition, key.entry, 'messages');
      }
    }
  }

  private evict(partition: string, entry: CachedDataKey, reason: EvictionReason): void {
    if (this.entries.peek(partition, { allowStale: true }) !== entry) {
      // Already replaced or gone: make sure the key is zeroed (and unlisted) all the same.
      if (!entry.destroyed) entry.destroy();
      if (this.byOwner.get(entry.owner)?.get(partition) === entry) this.forget(entry.owner, partition);
      return;
    }
    this.pendingReason = reason;
    try {
      this.entries.delete(partition);
    } finally {
      this.pendingReason = undefined;
    }
  }

  private async useOnce<T>(fetch: () => Promise<DataKeyMaterial>, use: (key: KeyUse) => T, requester: CacheRequester): Promise<T> {
    const charged = requester.charge();
    if (charged) await charged;
    this.served.misses += 1;
    this.observer.miss(this.kind);
    const material = await requester.inTurn(fetch);
    const entry = withDetails(new CachedDataKey(material.keyArn, material.plaintextKey, material.wrappedKey, material.requestId, this.now()), material);
    try {
      return use({ entry, cacheHit: false, coalesced: false });
    } finally {
      entry.destroy();
    }
  }
}
