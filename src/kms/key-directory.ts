/**
 * Key look-ups with a short TTL: alias/ARN -> key ARN and state (DescribeKey), and the alias
 * list (ListAliases). Encrypt partitions by the resolved ARN, the policy matches globs against
 * every name a key has, and a disabled key stops being used within one TTL even while data
 * keys for it are cached.
 *
 * lru-cache's fetchMethod gives TTL plus coalescing of concurrent look-ups for free. Unknown
 * keys are remembered briefly too, so a caller cannot turn random key ids into a KMS flood.
 * Only the request that starts a look-up pays for it (its KmsCallContext's budget), and it pays
 * before the look-up starts: a refused charge never becomes a shared, failed fetch that
 * coalesced requests of other principals would inherit. Refreshing a key already known to
 * exist (or the alias list) once its TTL is over is free: it happens at most once per TTL per
 * real key, whoever asks, and a principal over budget keeps using its cached data keys.
 */
import { LRUCache } from 'lru-cache';
import type { KmsCallContext } from './call-context.js';
import { KmsError, isKmsError } from './errors.js';
import type { KeyAlias, KeyDescription, KeyProvider } from './provider.js';

type Lookup = { found: KeyDescription } | { missing: KmsError };

export interface KeyDirectoryOptions {
  ttlMs: number;
  notFoundTtlMs: number;
  capacity: number;
}

const DEFAULTS: KeyDirectoryOptions = { ttlMs: 60_000, notFoundTtlMs: 5_000, capacity: 10_000 };
const ALIASES = 'aliases';

export class KeyDirectory {
  // The fetch context is the request that starts a look-up: the call waits for its KMS turn.
  private readonly keys: LRUCache<string, Lookup, KmsCallContext>;
  private readonly aliases: LRUCache<string, KeyAlias[], KmsCallContext>;
  /** Look-ups in flight: a request finding its key here waits on it and pays nothing. */
  private readonly pending = new Set<string>();

  constructor(
    private readonly provider: KeyProvider,
    options: Partial<KeyDirectoryOptions> = {},
  ) {
    const { ttlMs, notFoundTtlMs, capacity } = { ...DEFAULTS, ...options };
    this.keys = new LRUCache<string, Lookup, KmsCallContext>({
      max: capacity,
      ttl: ttlMs,
      fetchMethod: async (keyId, stale, { options: fetchOptions, context }) => {
        this.pending.add(keyId);
        try {
          return { found: await context.inTurn(() => this.provider.describeKey(keyId)) };
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
    this.aliases = new LRUCache<string, KeyAlias[], KmsCallContext>({
      max: 1,
      ttl: ttlMs,
      // As for keys: while KMS is unreachable, the last alias list beats failing every decrypt.
      allowStaleOnFetchRejection: true,
      fetchMethod: async (_key, _stale, { context }) => {
        this.pending.add(ALIASES);
        try {
          return await context.inTurn(() => this.provider.listAliases());
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
    if (!this.keys.has(keyId) && !this.pending.has(keyId) && !this.isKnownKey(keyId)) trace.charge('DescribeKey');
    const status: LRUCache.Status<string, Lookup, KmsCallContext> = {};
    const lookup = (await this.keys.fetch(keyId, { status, context: trace })) as Lookup;
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

  async listAliases(trace: KmsCallContext): Promise<KeyAlias[]> {
    if (!this.aliases.has(ALIASES) && !this.pending.has(ALIASES) && this.aliases.peek(ALIASES, { allowStale: true }) === undefined) {
      trace.charge('ListAliases');
    }
    return (await this.aliases.fetch(ALIASES, { context: trace })) ?? [];
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
