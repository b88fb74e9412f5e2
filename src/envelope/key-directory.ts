/**
 * Key look-ups with a short TTL: alias/ARN -> key ARN and state (DescribeKey), and the alias
 * list (ListAliases). Encrypt partitions by the resolved ARN, the policy matches globs against
 * every name a key has, and a disabled key stops being used within one TTL even while data
 * keys for it are cached.
 *
 * lru-cache's fetchMethod gives TTL plus coalescing of concurrent look-ups for free. Unknown
 * keys are remembered briefly too, so a caller cannot turn random key ids into a KMS flood.
 */
import { LRUCache } from 'lru-cache';
import { KmsError, isKmsError } from '../kms/errors.js';
import type { KeyAlias, KeyDescription, KeyProvider } from '../kms/provider.js';
import type { KmsTrace } from './kms-trace.js';

type Lookup = { found: KeyDescription } | { missing: KmsError };

export interface KeyDirectoryOptions {
  ttlMs: number;
  notFoundTtlMs: number;
  capacity: number;
}

const DEFAULTS: KeyDirectoryOptions = { ttlMs: 60_000, notFoundTtlMs: 5_000, capacity: 10_000 };
const ALIASES = 'aliases';

export class KeyDirectory {
  private readonly keys: LRUCache<string, Lookup, unknown>;
  private readonly aliases: LRUCache<string, KeyAlias[], unknown>;

  constructor(
    private readonly provider: KeyProvider,
    options: Partial<KeyDirectoryOptions> = {},
  ) {
    const { ttlMs, notFoundTtlMs, capacity } = { ...DEFAULTS, ...options };
    this.keys = new LRUCache<string, Lookup, unknown>({
      max: capacity,
      ttl: ttlMs,
      fetchMethod: async (keyId, stale, { options: fetchOptions }) => {
        try {
          return { found: await this.provider.describeKey(keyId) };
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
        }
      },
    });
    this.aliases = new LRUCache<string, KeyAlias[], unknown>({
      max: 1,
      ttl: ttlMs,
      // As for keys: while KMS is unreachable, the last alias list beats failing every decrypt.
      allowStaleOnFetchRejection: true,
      fetchMethod: async () => this.provider.listAliases(),
    });
  }

  /** The key's ARN if it exists and may be used; a KmsError otherwise. */
  async resolve(keyId: string, trace: KmsTrace): Promise<string> {
    const status: LRUCache.Status<string, Lookup, unknown> = {};
    const lookup = (await this.keys.fetch(keyId, { status })) as Lookup;
    if ('missing' in lookup) throw lookup.missing;
    const key = lookup.found;
    if (status.fetch === 'miss') trace.add(key.requestId);
    if (!key.enabled) {
      throw key.state === 'Disabled'
        ? new KmsError('KeyDisabled', 'the key is disabled')
        : new KmsError('KeyUnavailableState', `the key is not usable in state ${key.state}`);
    }
    return key.keyArn;
  }

  /** Every name the policy may know this key by: its ARN and each alias (name and ARN) pointing at it. */
  async namesOf(keyArn: string): Promise<string[]> {
    const aliases = await this.listAliases();
    const own = aliases.filter((alias) => alias.keyArn === keyArn);
    return [keyArn, ...own.map((alias) => alias.aliasName), ...own.map((alias) => alias.aliasArn)];
  }

  async listAliases(): Promise<KeyAlias[]> {
    return (await this.aliases.fetch(ALIASES)) ?? [];
  }
}
