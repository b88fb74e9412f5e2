/**
 * The fleet bus against a real redis-server, two buses in this process standing for two
 * replicas. What each replica does with a command (evict, reload, audit) is recorded here
 * instead of done: test/fleet/fleet.test.ts runs it end to end in real service processes.
 *
 * - A replica that was SIGKILLed leaves its heartbeat key behind until its TTL: an action
 *   waits for it at most the timeout and names it in `missing`.
 * - Anything on the fleet channels that is not a well-formed command is ignored: an evict
 *   that names nothing (which would drop everything) is never carried out.
 * - Redis down: the answer is this replica alone, `degraded`, naming the replicas last seen.
 *
 * Without redis-server: skipped locally with a message, failed when CI=true.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FleetBus } from '../../src/fleet/fleet-bus.js';
import { ACK_CHANNEL, COMMAND_CHANNEL, parseMessage } from '../../src/fleet/messages.js';
import { createRedis } from '../../src/fleet/redis.js';
import { REPLICA_KEY_PREFIX, ReplicaRegistry } from '../../src/fleet/replica-registry.js';
import type { FleetAction, FleetOrigin } from '../../src/operations/admin/fleet.js';
import { REDIS_SERVER, startRedis, type RedisServer } from '../helpers/fleet.js';

const haveRedis = existsSync(REDIS_SERVER);
const inCi = process.env.CI === 'true';
if (!haveRedis && !inCi) console.warn(`[fleet-bus] ${REDIS_SERVER} not found: SKIPPED. Install it with scripts/fleet-tools.sh (as root).`);

const logger = pino({ level: 'silent' });
const origin: FleetOrigin = { requestId: '5f0c2a7e-2b1d-4c1e-9d7a-0e6b3f9a1c22', principalType: 'api-key', principalId: 'ops' };

async function until<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('parseMessage: what the fleet channels accept', () => {
  const command = (action: unknown, extra: Record<string, unknown> = {}) => JSON.stringify({ type: 'command', id: 'c-1', from: 'replica-1', action, origin, ...extra });

  it('accepts an evict by key names, by context, or of everything, and a reload', () => {
    expect(parseMessage(command({ kind: 'evict', keyNames: ['alias/a', 'arn:aws:kms:eu-west-2:1:key/k'] }))).toMatchObject({ action: { kind: 'evict', keyNames: ['alias/a', 'arn:aws:kms:eu-west-2:1:key/k'] } });
    expect(parseMessage(command({ kind: 'evict', context: { tenant: 'a' } }))).toMatchObject({ action: { kind: 'evict', context: { tenant: 'a' } } });
    expect(parseMessage(command({ kind: 'evict', all: true }))).toMatchObject({ action: { kind: 'evict', all: true } });
    expect(parseMessage(command({ kind: 'reload' }))).toMatchObject({ action: { kind: 'reload' } });
  });

  it.each([
    ['not JSON', '{"type":'],
    ['an evict naming nothing (it would drop everything)', command({ kind: 'evict' })],
    ['all with a key', command({ kind: 'evict', all: true, keyNames: ['alias/a'] })],
    ['all: false', command({ kind: 'evict', all: false })],
    ['an unknown action', command({ kind: 'grant', principal: 'mallory' })],
    ['a context value that is not a string', command({ kind: 'evict', context: { tenant: 1 } })],
    ['too many key names', command({ kind: 'evict', keyNames: Array.from({ length: 9 }, (_, i) => `alias/k${i}`) })],
    ['an unknown principal type', command({ kind: 'reload' }, { origin: { ...origin, principalType: 'root' } })],
    ['a sender id with a newline', command({ kind: 'reload' }, { from: 'replica-1\nforged' })],
    ['an ack without ok', JSON.stringify({ type: 'ack', id: 'c-1', result: { instanceId: 'replica-2' } })],
  ])('ignores %s', (_, text) => {
    expect(parseMessage(text)).toBeUndefined();
  });
});

describe('the fleet bus on a real Redis', () => {
  if (!haveRedis && inCi) {
    it('has redis-server in CI', () => expect.fail(`CI=true but ${REDIS_SERVER} is missing: run scripts/fleet-tools.sh before the tests`));
  }

  describe.runIf(haveRedis)('two replicas', () => {
    let dir: string;
    let redis: RedisServer;
    const applied: { instanceId: string; action: FleetAction; originInstance: string }[] = [];
    const buses: FleetBus[] = [];

    function replica(instanceId: string): FleetBus {
      const client = createRedis(redis.url, logger);
      const registry = new ReplicaRegistry(client, { instanceId, version: 'test', startedAt: new Date(), heartbeatMs: 200 });
      const bus = new FleetBus(client, registry, {
        instanceId,
        confirmTimeoutMs: 1_500,
        logger,
        apply: async (action, _origin, originInstance) => {
          applied.push({ instanceId, action, originInstance });
          return { ok: true, dropped: 1 };
        },
      });
      bus.start();
      buses.push(bus);
      return bus;
    }

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'fleet-bus-'));
      redis = await startRedis(dir);
    });
    afterAll(async () => {
      await Promise.all(buses.map((bus) => bus.stop()));
      await redis?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('an action reaches the other replica, and a replica killed without leaving is named missing after the timeout', async () => {
      const a = replica('replica-a');
      replica('replica-b');
      await until(async () => ((await a.view()).replicas.length === 2 ? true : undefined));
      // Announced means listening: both already hear commands and acknowledgements.
      const writer = createRedis(redis.url, logger);
      await until(() => (writer.status === 'ready' ? true : undefined));
      expect(await writer.pubsub('NUMSUB', COMMAND_CHANNEL, ACK_CHANNEL)).toEqual([COMMAND_CHANNEL, 2, ACK_CHANNEL, 2]);

      const whole = await a.broadcast({ kind: 'evict', context: { tenant: 't' } }, origin, { instanceId: 'replica-a', ok: true, dropped: 3 });
      expect(whole).toMatchObject({ expected: ['replica-a', 'replica-b'], missing: [], confirmed: [{ instanceId: 'replica-a', dropped: 3 }, { instanceId: 'replica-b', ok: true, dropped: 1 }] });
      expect(applied).toEqual([{ instanceId: 'replica-b', action: { kind: 'evict', context: { tenant: 't' } }, originInstance: 'replica-a' }]);

      // A replica SIGKILLed: its heartbeat key outlives it (until its TTL), nothing answers for it.
      const ghost = { instanceId: 'replica-ghost', startedAt: new Date().toISOString(), version: 'test', seenAt: new Date().toISOString() };
      await writer.set(`${REPLICA_KEY_PREFIX}replica-ghost`, JSON.stringify(ghost), 'PX', 60_000);
      const started = Date.now();
      const partial = await a.broadcast({ kind: 'reload' }, origin, { instanceId: 'replica-a', ok: true, digest: 'd' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_400);
      expect(partial.expected).toEqual(['replica-a', 'replica-b', 'replica-ghost']);
      expect(partial.missing).toEqual(['replica-ghost']);
      expect(partial.confirmed.map((c) => c.instanceId)).toEqual(['replica-a', 'replica-b']);
      await writer.del(`${REPLICA_KEY_PREFIX}replica-ghost`);

      // A malformed command on the channel is ignored: nothing is applied.
      const before = applied.length;
      await writer.publish(COMMAND_CHANNEL, JSON.stringify({ type: 'command', id: 'forged-1', from: 'replica-x', action: { kind: 'evict' }, origin }));
      await a.broadcast({ kind: 'reload' }, origin, { instanceId: 'replica-a', ok: true });
      expect(applied.slice(before).map((entry) => entry.action)).toEqual([{ kind: 'reload' }]);
      writer.disconnect();
    }, 60_000);

    it('Redis down: this replica alone, degraded, with the replicas last seen as missing; Redis back: whole again', async () => {
      const a = buses[0]!;
      await redis.kill();
      const report = await a.broadcast({ kind: 'evict', all: true }, origin, { instanceId: 'replica-a', ok: true, dropped: 0 });
      expect(report.degraded).toMatch(/Redis unreachable/);
      expect(report.confirmed.map((c) => c.instanceId)).toEqual(['replica-a']);
      expect(report.missing).toEqual(['replica-b']);
      expect((await a.view()).redis).toBe('unreachable');

      await redis.start();
      const healed = await until(async () => {
        const again = await a.broadcast({ kind: 'evict', all: true }, origin, { instanceId: 'replica-a', ok: true, dropped: 0 });
        return again.degraded === undefined && again.confirmed.length === 2 ? again : undefined;
      }, 30_000);
      expect(healed.missing).toEqual([]);
    }, 60_000);
  });
});
