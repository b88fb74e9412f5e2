/**
 * Replicas announce themselves: each refreshes a key of its own with a TTL (a heartbeat), so
 * the set of keys is the fleet, and a replica that died leaves it within one TTL without
 * anyone cleaning up. A replica that stops cleanly deletes its key at once (it drains, so a
 * fleet action need not wait for it).
 *
 * The last list read is kept: with Redis unreachable, a fleet answer can still name the
 * replicas it expected and could not reach.
 */
import type { Redis } from 'ioredis';
import type { ReplicaSeen } from '../operations/admin/fleet.js';

export const REPLICA_KEY_PREFIX = 'envelope:fleet:replica:';
const SCAN_COUNT = 100;

export interface RegistryOptions {
  instanceId: string;
  version: string;
  startedAt: Date;
  heartbeatMs: number;
  now?: () => number;
}

export class ReplicaRegistry {
  #timer: NodeJS.Timeout | undefined;
  #lastSeen: ReplicaSeen[] = [];
  readonly #now: () => number;

  constructor(
    private readonly redis: Redis,
    private readonly options: RegistryOptions,
  ) {
    this.#now = options.now ?? Date.now;
  }

  /** A replica missing three heartbeats in a row is gone. */
  get ttlMs(): number {
    return this.options.heartbeatMs * 3;
  }

  start(): void {
    // At once on every (re)connection, not only at the next tick: a restarted Redis is empty.
    this.redis.on('ready', () => void this.beat());
    void this.beat();
    this.#timer = setInterval(() => void this.beat(), this.options.heartbeatMs);
    this.#timer.unref();
  }

  /** Stops the heartbeat and removes this replica's key (best effort: its TTL removes it otherwise). */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.redis.del(this.keyOf(this.options.instanceId)).catch(() => undefined);
  }

  /** Refreshes this replica's key; false when Redis did not take it. */
  async beat(): Promise<boolean> {
    const seen: ReplicaSeen = {
      instanceId: this.options.instanceId,
      startedAt: this.options.startedAt.toISOString(),
      version: this.options.version,
      seenAt: new Date(this.#now()).toISOString(),
    };
    try {
      await this.redis.set(this.keyOf(seen.instanceId), JSON.stringify(seen), 'PX', this.ttlMs);
      // Keeps lastSeen fresh, so an answer given while Redis is down can name the replicas.
      await this.list();
      return true;
    } catch {
      return false;
    }
  }

  /** The replicas announced now, sorted by id; rejects when Redis cannot be read. */
  async list(): Promise<ReplicaSeen[]> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.redis.scan(cursor, 'MATCH', `${REPLICA_KEY_PREFIX}*`, 'COUNT', SCAN_COUNT);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    const values = keys.length === 0 ? [] : await this.redis.mget(...keys);
    const replicas = values.flatMap((value) => {
      const seen = value === null ? undefined : parseSeen(value);
      return seen ? [seen] : [];
    });
    replicas.sort((a, b) => a.instanceId.localeCompare(b.instanceId));
    this.#lastSeen = replicas;
    return replicas;
  }

  /** The last list read (empty before any). */
  get lastSeen(): ReplicaSeen[] {
    return this.#lastSeen;
  }

  private keyOf(instanceId: string): string {
    return `${REPLICA_KEY_PREFIX}${instanceId}`;
  }
}

/** A heartbeat value, or undefined when it is not one (Redis is shared: never trust its shape). */
function parseSeen(value: string): ReplicaSeen | undefined {
  try {
    const parsed = JSON.parse(value) as Record<string, unknown>;
    const fields = ['instanceId', 'startedAt', 'version', 'seenAt'] as const;
    if (!fields.every((field) => typeof parsed[field] === 'string')) return undefined;
    return { instanceId: String(parsed.instanceId), startedAt: String(parsed.startedAt), version: String(parsed.version), seenAt: String(parsed.seenAt) };
  } catch {
    return undefined;
  }
}
