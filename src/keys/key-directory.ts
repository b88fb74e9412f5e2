/**
 * Key look-ups with a short TTL: alias/ARN -> key ARN and state (DescribeKey), and the alias
 * list (ListAliases). Encrypt partitions by the resolved ARN, the policy matches globs against
 * every name a key has, and a disabled key stops being used within one TTL even while data
 * keys for it are cached.
 *
 * lru-cache's fetchMethod gives TTL plus coalescing of concurrent look-ups for free. Unknown
 * keys are remembered briefly too, so a caller cannot turn random key ids into a KMS flood.
 *
 * Two kinds of look-up, queued differently:
 * - the first look-up of a name (or of one last found missing) is the asking request's own KMS
 *   call: charged to its budget before it starts (a refused charge never becomes a shared,
 *   failed fetch that other principals' requests would inherit), sent in its own KMS turn, and
 *   shared with other requests only once sent, so nobody waits in the asker's queue for it;
 * - a known key's refresh once its TTL is over, and the alias list, are everyone's: free, at
 *   most one per TTL per real key whoever asks, and sent in the directory's own KMS queue
 *   (KMS_LOOKUP_CONCURRENCY, KMS_LOOKUP_PACE_PER_SECOND), never in the asker's. A principal
 *   over budget keeps using its cached data keys, and a principal whose own queue is full or
 *   paced delays no one's look-up.
 */
import { LRUCache } from 'lru-cache';
import type { KmsCallContext } from '../kms/call-context.js';
import { KmsError, isKmsError } from '../kms/errors.js';
import { KmsQueue } from '../kms/kms-queue.js';
import type { KeyAlias, KeyDescription, KeyProvider } from '../kms/provider.js';

type Lookup = { found: KeyDescription } | { missing: KmsError };

export interface KeyDirectoryOptions {
  ttlMs: number;
  notFoundTtlMs: number;
  capacity: number;
  /** Where refreshes and the alias list wait for KMS (default: 4 at once, 50 a second). */
  lookups: KmsQueue;
}

const DEFAULTS = { ttlMs: 60_000, notFoundTtlMs: 5_000, capacity: 10_000 };
const ALIASES = 'aliases';

/** How a look-up's KMS call is sent: already in the asker's own turn, or in the shared queue. */
interface LookupContext {
  ownTurn: boolean;
}

export class KeyDirectory {
  private readonly keys: LRUCache<string, Lookup, LookupContext>;
  private readonly aliases: LRUCache<string, KeyAlias[], LookupContext>;
  private readonly lookups: KmsQueue;
  /** Look-ups in flight: a request finding its key here waits on it and pays nothing. */
  private readonly pending = new Set<string>();

  constructor(
    private readonly provider: KeyProvider,
    options: Partial<KeyDirectoryOptions> = {},
  ) {
    const { ttlMs, notFoundTtlMs, capacity } = { ...DEFAULTS, ...options };
    this.lookups = options.lookups ?? new KmsQueue({ concurrency: 4, pacePerSecond: 50 });
    this.keys = new LRUCache<string, Lookup, LookupContext>({
      max: capacity,
      ttl: ttlMs,
      fetchMethod: async (keyId, stale, { options: fetchOptions, context }) => {
        this.pending.add(keyId);
        try {
          const send = () => this.provider.describeKey(keyId);
          return { found: await (context.ownTurn ? send() : this.lookups.run(send)) };
        } catch (error) {
          if (isKmsError(error) && error.code === 'KeyNotFound') {
            fetchOptions.ttl = notFoundTtlMs;
            return { missing: error };
          }
          // KMS unreachable: keep the last answer for a little longer rather than failing
          // requests whose data keys are still cached (their own age and usage caps still
          // bound them). A key disabled during the outage is caught at the next successful
          // look-up; nothing is known about it before then either way.
          if (stale && isKmsError(error) && (error.code === 'Unavailable' || error.code === 'Throttled')) {
            fetchOptions.ttl = notFoundTtlMs;
            return stale;
          }
          throw error;
        } finally {
          this.pending.delete(keyId);
        }
      },
    });
    this.aliases = new LRUCache<string, KeyAlias[], LookupContext>({
      max: 1,
      ttl: ttlMs,
      // As for keys: while KMS is unreachable, the last alias list beats failing every decrypt.
      allowStaleOnFetchRejection: true,
      fetchMethod: async () => {
        this.pending.add(ALIASES);
        try {
          return await this.lookups.run(() => this.provider.listAliases());
        } finally {
          this.pending.delete(ALIASES);
        }
      },
    });
  }

  /** The key's ARN if it exists and may be used; a KmsError otherwise. */
  async resolve(keyId: string, trace: KmsCallContext): Promise<string> {
    return assertUsable(await this.describe(keyId, trace));
  }

  /**
   * The key's ARN and state, whatever the state (KeyNotFound if there is no such key), so
   * that the policy can be asked before a caller learns the state (assertUsable).
   */
  async describe(keyId: string, trace: KmsCallContext): Promise<KeyDescription> {
    if (this.isShared(keyId)) return this.lookUp(keyId, trace, false);
    const charged = trace.charge('DescribeKey');
    if (charged) await charged;
    // Checked again in the turn: another request may have sent the same look-up meanwhile.
    return trace.inTurn(() => this.lookUp(keyId, trace, !this.isShared(keyId)));
  }

  /** Cached, in flight, or a refresh of a key found before: nothing of the asker's own. */
  private isShared(keyId: string): boolean {
    return this.keys.has(keyId) || this.pending.has(keyId) || this.isKnownKey(keyId);
  }

  private async lookUp(keyId: string, trace: KmsCallContext, ownTurn: boolean): Promise<KeyDescription> {
    const status: LRUCache.Status<string, Lookup, LookupContext> = {};
    const lookup = (await this.keys.fetch(keyId, { status, context: { ownTurn } })) as Lookup;
    if ('missing' in lookup) throw lookup.missing;
    const key = lookup.found;
    if (status.fetch === 'miss') trace.add(key.requestId);
    return key;
  }

  /** A key found before, its entry now stale. Unknown names are never free, or cycling them would be. */
  private isKnownKey(keyId: string): boolean {
    const stale = this.keys.peek(keyId, { allowStale: true });
    return stale !== undefined && 'found' in stale;
  }

  /** Every name the policy may know this key by: its ARN and each alias (name and ARN) pointing at it. */
  async namesOf(keyArn: string, trace: KmsCallContext): Promise<string[]> {
    const aliases = await this.listAliases(trace);
    const own = aliases.filter((alias) => alias.keyArn === keyArn);
    return [keyArn, ...own.map((alias) => alias.aliasName), ...own.map((alias) => alias.aliasArn)];
  }

  /** One list for every caller: fetched in the shared queue and charged to no one. */
  async listAliases(_trace: KmsCallContext): Promise<KeyAlias[]> {
    return (await this.aliases.fetch(ALIASES, { context: { ownTurn: false } })) ?? [];
  }

  /** Look-ups waiting in the shared queue (a gauge). */
  get queued(): number {
    return this.lookups.queued;
  }
}

/** The key's ARN if its state allows use; KeyDisabled or KeyUnavailableState otherwise. */
export function assertUsable(key: KeyDescription): string {
  if (!key.enabled) {
    throw key.state === 'Disabled'
      ? new KmsError('KeyDisabled', 'the key is disabled')
      : new KmsError('KeyUnavailableState', `the key is not usable in state ${key.state}`);
  }
  return key.keyArn;
}
