/**
 * Shared limits (REDIS_URL): two app instances built through the process's own composition
 * root, sharing one real redis-server, stand for two replicas. The per-principal rate limit,
 * the in-flight cap, the KMS budget and the failed-authentication lockout hold for both
 * together; without Redis each instance has its own (the N x excess the shared limits remove,
 * shown beside each). Redis killed: every request the policy allows is still served, under
 * per-process limits, the fallback gauge says so, authentication still refuses; Redis back:
 * shared again.
 *
 * Without redis-server: skipped with a message locally, failed with CI=true.
 */
import { randomUUID } from 'node:crypto';
import { request as httpRequest, type ClientRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyBaseLogger } from 'fastify';
import { AUTH, buildTestApp, countingProvider, type TestApp } from '../helpers/app.js';
import { captureAppLog } from '../helpers/app-log-capture.js';
import { haveRedis, RedisServer, REDIS_SERVER, waitFor } from '../helpers/redis.js';

const inCi = process.env.CI === 'true';
const available = haveRedis();
if (!available && !inCi) console.warn(`shared-limits: ${REDIS_SERVER} not found, suite skipped (scripts/fleet-tools.sh, as root)`);

const BAD_TOKEN = { authorization: 'Bearer not-a-valid-token' };

describe('shared limits through Redis', () => {
  if (!available && inCi) {
    it('has redis-server in CI', () => {
      expect.fail(`CI=true but ${REDIS_SERVER} is missing: run scripts/fleet-tools.sh before the tests`);
    });
  }

  describe.runIf(available)('two instances, one redis-server', () => {
    let redis: RedisServer;
    const apps: TestApp[] = [];

    beforeAll(async () => {
      redis = await RedisServer.start();
    }, 60_000);
    afterAll(async () => {
      await redis?.kill();
    });
    afterEach(async () => {
      await Promise.all(apps.splice(0).map((app) => app.close()));
    });

    /** Two instances with `env`, sharing the Redis (a prefix of their own: tests stay apart) or, with shared false, not. */
    async function pair(env: Record<string, string>, shared = true) {
      const prefix = `t${randomUUID().slice(0, 8)}:`;
      const build = async () => {
        const counted: { calls?: Record<string, number> } = {};
        const log = captureAppLog();
        const app = await buildTestApp({
          logger: log.logger as unknown as FastifyBaseLogger,
          // A generous command timeout: on a busy machine a slow answer must not turn a test of
          // the shared limits into one of the fallback (the frozen-Redis test sets its own).
          env: { ...(shared && { REDIS_URL: redis.url, REDIS_KEY_PREFIX: prefix, REDIS_COMMAND_TIMEOUT_MS: '5000' }), ...env },
          wrapProvider: (provider) => {
            const counting = countingProvider(provider);
            counted.calls = counting.calls;
            return counting;
          },
        });
        apps.push(app);
        return Object.assign(app, {
          kmsCalls: (operation: string) => counted.calls![operation] ?? 0,
          /** How many app log lines say `msg`. */
          logged: (msg: string) => log.lines.filter((line) => line.msg === msg).length,
        });
      };
      const pair = [await build(), await build()] as const;
      if (shared) await waitFor(() => pair.every((app) => app.service.shared.redis!.status === 'ready'), 'both instances connected to Redis');
      return pair;
    }

    const keys = (app: TestApp, headers: Record<string, string> = AUTH) => app.app.inject({ method: 'GET', url: '/v1/keys', headers });
    const metric = async (app: TestApp, name: string): Promise<number> => {
      const text = (await app.app.inject({ method: 'GET', url: '/metrics' })).body;
      const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
      return line === undefined ? Number.NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
    };

    /** Requests alternating between the instances until `total`; the statuses by instance. */
    async function alternate(instances: readonly TestApp[], total: number, send = keys) {
      const statuses: number[][] = instances.map(() => []);
      for (let i = 0; i < total; i += 1) {
        const at = i % instances.length;
        statuses[at]!.push((await send(instances[at]!)).statusCode);
      }
      return statuses;
    }
    const count = (statuses: number[][], status: number) => statuses.flat().filter((s) => s === status).length;

    it('the rate limit holds for both instances together', async () => {
      const env = { RATE_LIMIT_MAX: '40', RATE_LIMIT_WINDOW_MS: '60000' };
      const shared = await alternate(await pair(env), 100);
      // Within ±10 % of the limit (fixed windows counted in one Redis: exactly, in practice).
      expect(count(shared, 200)).toBeGreaterThanOrEqual(36);
      expect(count(shared, 200)).toBeLessThanOrEqual(44);
      expect(count(shared, 200) + count(shared, 429)).toBe(100);
      // Without Redis, each instance gives the principal its own 40.
      const apart = await alternate(await pair(env, false), 100);
      expect(count(apart, 200)).toBe(80);
    }, 60_000);

    it('a lockout for failed authentications earned on one instance holds on the other; a valid token is still served', async () => {
      const env = { AUTH_FAILURE_MAX: '3', AUTH_FAILURE_WINDOW_MS: '60000' };
      const [a, b] = await pair(env);
      const onA = [];
      for (let i = 0; i < 4; i += 1) onA.push((await keys(a, BAD_TOKEN)).statusCode);
      expect(onA).toEqual([401, 401, 401, 429]);
      const onB = await keys(b, BAD_TOKEN);
      expect(onB.statusCode).toBe(429);
      expect(onB.json()).toMatchObject({ code: 'TooManyAuthFailures' });
      expect(Number(onB.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      // Only failures are limited: a valid token from the same address is served.
      expect((await keys(b)).statusCode).toBe(200);
      // Apart, B has seen one failure: a 401.
      const [, apartB] = await pair(env, false);
      expect((await keys(apartB, BAD_TOKEN)).statusCode).toBe(401);
    }, 60_000);

    it('a flood of new contexts across both instances costs the fleet one KMS budget', async () => {
      // A 20-call budget refilled at 1/s: the fleet window is 20 s, longer than the flood.
      const env = { KMS_BUDGET_BURST: '20', KMS_BUDGET_PER_SECOND: '1' };
      const flood = (instances: readonly (TestApp & { kmsCalls: (op: string) => number })[]) =>
        alternate(instances, 60, (app) =>
          app.app.inject({ method: 'POST', url: '/v1/encrypt', headers: AUTH, payload: { plaintext: 'aGk=', context: { tenant: randomUUID() } } }),
        );
      const sharedPair = await pair(env);
      const shared = await flood(sharedPair);
      const generated = sharedPair.reduce((sum, app) => sum + app.kmsCalls('GenerateDataKey'), 0);
      const described = sharedPair.reduce((sum, app) => sum + app.kmsCalls('DescribeKey'), 0);
      // Every KMS call a request causes is charged (GenerateDataKey, and each instance's first DescribeKey).
      expect(generated + described).toBeLessThanOrEqual(20);
      expect(generated).toBeGreaterThanOrEqual(20 - described);
      expect(count(shared, 200)).toBe(generated);
      expect(count(shared, 429)).toBe(60 - generated);
      // Apart: a budget per instance, twice the calls.
      const apartPair = await pair(env, false);
      await flood(apartPair);
      const apartGenerated = apartPair.reduce((sum, app) => sum + app.kmsCalls('GenerateDataKey'), 0);
      expect(apartGenerated).toBeGreaterThanOrEqual(2 * (20 - 1));
    }, 60_000);

    describe('in flight', () => {
      const held: ClientRequest[] = [];
      let inspector: Redis;
      beforeAll(() => {
        inspector = new Redis(redis.url);
      });
      afterAll(() => inspector.disconnect());
      afterEach(() => {
        for (const request of held.splice(0)) request.destroy();
      });

      /** The leases of the principal's requests in flight, in Redis. */
      async function leases(app: TestApp): Promise<number> {
        const found = await inspector.keys(`${app.config.REDIS_KEY_PREFIX}inflight:*`);
        return found.length === 0 ? 0 : inspector.zcard(found[0]!);
      }

      /** Starts a request on `app` whose body never ends: it stays in flight until destroyed. */
      async function holdOpen(app: TestApp): Promise<void> {
        const address = app.app.server.address() as AddressInfo;
        const request = httpRequest({
          host: '127.0.0.1',
          port: address.port,
          method: 'POST',
          path: '/v1/encrypt',
          headers: { ...AUTH, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
        });
        request.on('error', () => {});
        request.write('{"plaintext":');
        held.push(request);
      }

      it('the cap counts the requests in progress on both instances, and a place comes back when its response closes', async () => {
        const [a, b] = await pair({ MAX_IN_FLIGHT_PER_PRINCIPAL: '2' });
        await a.app.listen({ port: 0, host: '127.0.0.1' });
        await holdOpen(a);
        await holdOpen(a);
        await waitFor(async () => (await leases(a)) === 2, 'two leases in Redis');
        const refused = await keys(b);
        expect(refused.statusCode).toBe(429);
        expect(refused.json()).toMatchObject({ code: 'TooManyInFlight' });
        held.pop()!.destroy();
        await waitFor(async () => (await leases(a)) === 1, 'a lease given back');
        expect((await keys(b)).statusCode).toBe(200);
      }, 60_000);

      it('places held by an instance that lost Redis lapse after the lease time', async () => {
        const [a, b] = await pair({ MAX_IN_FLIGHT_PER_PRINCIPAL: '1', REDIS_IN_FLIGHT_LEASE_MS: '3000' });
        await a.app.listen({ port: 0, host: '127.0.0.1' });
        await holdOpen(a);
        await waitFor(async () => (await leases(a)) === 1, 'the held request\'s lease in Redis');
        expect((await keys(b)).statusCode).toBe(429);
        // A is cut off from Redis (as a crashed replica would be): it can neither renew nor give back.
        a.service.shared.redis!.disconnect();
        await waitFor(async () => (await keys(b)).statusCode === 200, 'the lapsed lease freeing the place', 30_000);
      }, 60_000);
    });

    it('Redis frozen (connected, never answering): requests are served, decided per process; Redis answering again: shared again', async () => {
      const [a, b] = await pair({ RATE_LIMIT_MAX: '1000', REDIS_COMMAND_TIMEOUT_MS: '200' });
      expect((await keys(a)).statusCode).toBe(200);
      redis.pause();
      try {
        // The connection is up but nothing answers: served all the same, decided per process.
        const during = await alternate([a, b], 6);
        expect(count(during, 200)).toBe(6);
        expect(await metric(a, 'shared_limits_fallback')).toBe(1);
        expect(await metric(b, 'shared_limits_fallback')).toBe(1);
      } finally {
        redis.resume();
      }
      await waitFor(async () => (await keys(a)).statusCode === 200 && (await metric(a, 'shared_limits_fallback')) === 0, 'decisions in Redis again');
    }, 60_000);

    it('Redis holds counters keyed by principal key and address: never a token, a key or a payload', async () => {
      const token = 'Sekr1t-dev-token-7f3a';
      const wrong = 'Wr0ng-token-c41e';
      const [a, b] = await pair({ DEV_TOKEN: token });
      const auth = { authorization: `Bearer ${token}` };
      for (const app of [a, b]) {
        const encrypted = await app.app.inject({ method: 'POST', url: '/v1/encrypt', headers: auth, payload: { plaintext: 'c2VjcmV0LXBheWxvYWQ=', context: { tenant: 'ctx-value-9d2' } } });
        expect(encrypted.statusCode).toBe(200);
        expect((await keys(app, { authorization: `Bearer ${wrong}` })).statusCode).toBe(401);
      }
      const inspector = new Redis(redis.url);
      try {
        const names = await inspector.keys(`${a.config.REDIS_KEY_PREFIX}*`);
        expect(names.some((name) => name.includes(':rate:principal:dev-token:dev'))).toBe(true);
        expect(names.some((name) => name.includes(':kms:dev-token:dev'))).toBe(true);
        expect(names.some((name) => name.includes(':auth:127.0.0.1'))).toBe(true);
        let stored = names.join('\n');
        for (const name of names) {
          stored += (await inspector.type(name)) === 'zset' ? (await inspector.zrange(name, 0, -1)).join('\n') : String(await inspector.get(name));
        }
        for (const secret of [token, wrong, 'c2VjcmV0LXBheWxvYWQ=', 'secret-payload', 'ctx-value-9d2', 'arn:']) expect(stored).not.toContain(secret);
      } finally {
        inspector.disconnect();
      }
    }, 60_000);

    it('REDIS_URL and its settings are validated at start', async () => {
      const { loadConfig } = await import('../../src/config.js');
      expect(() => loadConfig({ REDIS_URL: 'http://127.0.0.1:6379' })).toThrow(/REDIS_URL/);
      expect(() => loadConfig({ REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'has space' })).toThrow(/REDIS_KEY_PREFIX/);
      expect(() => loadConfig({ REDIS_URL: redis.url, REDIS_COMMAND_TIMEOUT_MS: '0' })).toThrow(/REDIS_COMMAND_TIMEOUT_MS/);
      expect(loadConfig({ REDIS_URL: 'rediss://user:secret@redis.internal:6380/0' }).REDIS_URL).toBe('rediss://user:secret@redis.internal:6380/0');
    });

    it('Redis killed: requests are served under per-process limits and the gauge says so; Redis back: shared again', async () => {
      const env = { RATE_LIMIT_MAX: '30', RATE_LIMIT_WINDOW_MS: '60000', AUTH_FAILURE_MAX: '50' };
      const [a, b] = await pair(env);
      expect(await metric(a, 'shared_limits_fallback')).toBe(0);
      expect(await metric(a, 'redis_connected')).toBe(1);
      const before = await alternate([a, b], 10);
      expect(count(before, 200)).toBe(10);

      await redis.kill();
      await waitFor(() => a.service.shared.redis!.status !== 'ready' && b.service.shared.redis!.status !== 'ready', 'both instances seeing Redis gone');
      const auditedBefore = a.auditEvents().length + b.auditEvents().length;
      // Allowed by the policy and within each instance's own limit: every one served.
      const during = await alternate([a, b], 40);
      expect(count(during, 200)).toBe(40);
      expect(await metric(a, 'shared_limits_fallback')).toBe(1);
      expect(await metric(b, 'shared_limits_fallback')).toBe(1);
      expect(await metric(a, 'redis_connected')).toBe(0);
      expect(await metric(a, 'shared_limits_local_decisions_total')).toBeGreaterThan(0);
      // Authorization is not opened up: a bad token is still refused (and audited).
      expect((await keys(a, BAD_TOKEN)).statusCode).toBe(401);
      // The per-process limit holds: 30 per instance.
      const overLocal = await alternate([a], 20);
      expect(count(overLocal, 429)).toBe(10);
      // Every request audited, the refusals included.
      expect(a.auditEvents().length + b.auditEvents().length - auditedBefore).toBe(40 + 1 + 20);

      await redis.start();
      await waitFor(() => a.service.shared.redis!.status === 'ready' && b.service.shared.redis!.status === 'ready', 'both instances reconnected', 30_000);
      // The next decision on each goes to Redis again (their own limits still allow it).
      await waitFor(async () => (await keys(a)).statusCode === 200 && (await metric(a, 'shared_limits_fallback')) === 0, 'A deciding in Redis');
      await waitFor(async () => (await keys(b)).statusCode === 200 && (await metric(b, 'shared_limits_fallback')) === 0, 'B deciding in Redis');
      // Counted for the fleet again (from an empty window): 30 for both together.
      const inspector = new Redis(redis.url);
      await inspector.flushall();
      inspector.disconnect();
      const after = await alternate([a, b], 60);
      expect(count(after, 200)).toBe(30);
      expect(await metric(a, 'shared_limits_fallback')).toBe(0);
      expect(await metric(b, 'shared_limits_fallback')).toBe(0);
      // One line per transition, however many decisions fell back.
      for (const app of [a, b]) {
        expect(app.logged('shared limits: Redis unavailable, limits now per process')).toBe(1);
        expect(app.logged('shared limits: Redis answering, limits fleet-wide again')).toBe(1);
        expect(app.logged('Redis connection lost: limits fall back to per-process')).toBe(1);
        expect(app.logged('Redis connected')).toBe(2);
      }
    }, 90_000);
  });
});
