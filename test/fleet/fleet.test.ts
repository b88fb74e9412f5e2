/**
 * The fleet on loopback: three service processes (AWS provider on the shared local-kms) behind
 * HAProxy running deploy/haproxy/haproxy.cfg as it is, one redis-server (test/helpers/fleet.ts).
 *
 * - HAProxy answers a token far over its rate with its own 429 (problem+json, Retry-After):
 *   those requests never reach a replica (no replica audits them, and every request a replica
 *   sees is audited); it cuts a client whose request does not arrive in time (slowloris).
 * - An evict sent to one replica drops the keys on all three (the next encrypt on each calls
 *   KMS), the answer names the three, and each other replica audits it with the originating
 *   request id. A policy reload reaches all three the same way.
 * - Each replica restarted in turn under steady load through HAProxy: no request lost.
 * - Redis killed: requests are still served, an evict answers `degraded` with the replicas it
 *   could not reach, GET /v1/admin/fleet says `unreachable`; Redis back: the fleet answers again.
 * - Every replica's audit file verifies, and `audit:verify --replica` accepts the set.
 *
 * Without redis-server or haproxy: skipped locally with a message, failed when CI=true
 * (scripts/fleet-tools.sh installs both).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_KMS_CREDENTIALS, LOCAL_KMS_REGION, localKmsEndpoint } from '../helpers/local-kms.js';
import { haproxyServerName, missingFleetTools, startFleet, type Fleet, type Replica } from '../helpers/fleet.js';
import { send, type HttpOutcome } from '../ops/helpers/http.js';
import { REPO_ROOT, childEnv } from '../ops/helpers/service-process.js';

const TOKENS = { app: 'fleet-app-token-5b1e0c9d', flood: 'fleet-flood-token-0a7f3e21', ops: 'fleet-ops-token-c94d2b60', late: 'fleet-late-token-81f6aa03' };
const sha = (text: string) => createHash('sha256').update(text).digest('hex');

function policy(names: (keyof typeof TOKENS)[]): string {
  return [
    'version: 1',
    'authentication:',
    '  apiKeys:',
    ...names.map((name) => `    - { name: ${name}, sha256: "${sha(TOKENS[name])}" }`),
    'rules:',
    '  - id: data',
    `    principals: [${names.filter((n) => n !== 'ops').join(', ')}]`,
    '    operations: [encrypt, decrypt]',
    '    keys: ["*"]',
    '    context: { allowOthers: true }',
    '  - id: admin',
    '    principals: [ops]',
    '    operations: [admin:read, admin:cache, admin:policy]',
    '    keys: ["*"]',
    '',
  ].join('\n');
}

/** HAProxy's per-token rate in the test: far above the steady load, far below the flood. */
const TOKEN_RATE = 300;
const RATE_PERIOD_S = 10;
const FLOOD_REQUESTS = 1200;

const missing = missingFleetTools();
const kmsEndpoint = localKmsEndpoint();
const inCi = process.env.CI === 'true';
const runnable = missing.length === 0 && kmsEndpoint !== undefined;
if (!runnable && !inCi) {
  console.warn(
    `[fleet] ${missing.length ? `${missing.join(', ')} not found` : 'no local-kms'}: the fleet test is SKIPPED. ` +
      'Install redis-server and haproxy with scripts/fleet-tools.sh (as root).',
  );
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const PLAINTEXT = Buffer.from('fleet').toString('base64');

function encrypt(baseUrl: string, token: string, context: Record<string, string>): Promise<HttpOutcome> {
  return send(`${baseUrl}/v1/encrypt`, { headers: bearer(token), body: JSON.stringify({ plaintext: PLAINTEXT, context }) });
}

function ok(outcome: HttpOutcome): { status: number; body: Record<string, unknown>; requestId: string } {
  if (outcome.kind !== 'response') throw new Error(`no response: ${outcome.code} ${outcome.message}`);
  return { status: outcome.status, body: outcome.body ? (JSON.parse(outcome.body) as Record<string, unknown>) : {}, requestId: String(outcome.headers['x-request-id'] ?? '') };
}

interface AuditLine {
  eventName: string;
  eventType: string;
  requestID?: string;
  userIdentity?: { principalId?: string };
  additionalEventData?: { cacheHit?: boolean; kmsRequestIds?: string[] };
  serviceEventDetails?: Record<string, unknown>;
}

function auditEvents(replica: Replica): AuditLine[] {
  return readFileSync(replica.auditFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as AuditLine);
}

/** Waits for the audit event of a request (written before its answer, but read from another process's file). */
function auditOf(replica: Replica, requestId: string): AuditLine {
  const event = auditEvents(replica).find((e) => e.requestID === requestId);
  if (!event) throw new Error(`no audit event for ${requestId} in ${replica.instanceId}'s log`);
  return event;
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface FleetReport {
  expected: string[];
  confirmed: { instanceId: string; ok: boolean; dropped?: number; digest?: string }[];
  missing: string[];
  degraded?: string;
}

describe('a fleet of three replicas behind HAProxy, with Redis', () => {
  if (!runnable && inCi) {
    it('has redis-server, haproxy and local-kms in CI', () => {
      expect.fail(`CI=true but ${missing.length ? missing.join(', ') : 'local-kms'} is missing: run scripts/fleet-tools.sh before the tests (the fleet test must not be skipped in CI)`);
    });
  }

  describe.runIf(runnable)('running', () => {
    let fleet: Fleet;
    const admin = (replica: { baseUrl: string }, path: string, body?: unknown) =>
      send(`${replica.baseUrl}${path}`, { method: body === undefined && path.endsWith('fleet') ? 'GET' : 'POST', headers: bearer(TOKENS.ops), ...(body === undefined ? {} : { body: JSON.stringify(body) }) });

    beforeAll(async () => {
      fleet = await startFleet({
        kmsEndpoint: kmsEndpoint!,
        policy: policy(['app', 'flood', 'ops']),
        haproxyEnv: {
          HAPROXY_TOKEN_RATE: String(TOKEN_RATE),
          HAPROXY_RATE_PERIOD: `${RATE_PERIOD_S}s`,
          HAPROXY_RETRY_AFTER: '7',
          // Every request of the test comes from 127.0.0.1: the per-source limits stay out of the way.
          HAPROXY_SOURCE_RATE: '1000000',
          HAPROXY_CONN_PER_SOURCE: '10000',
          HAPROXY_TIMEOUT_HTTP_REQUEST: '2s',
        },
      });
      // Every replica announced itself before any fleet action is asked.
      await eventually('three replicas announced', async () => {
        const view = ok(await admin(fleet.replicas[0]!, '/v1/admin/fleet'));
        return (view.body.replicas as unknown[]).length === 3 ? true : undefined;
      });
    }, 240_000);

    afterAll(async () => {
      await fleet?.stop();
    }, 120_000);

    it('GET /v1/admin/fleet on any replica lists the three', async () => {
      for (const replica of fleet.replicas) {
        const view = ok(await admin(replica, '/v1/admin/fleet'));
        expect(view.status).toBe(200);
        expect(view.body.instanceId).toBe(replica.instanceId);
        expect(view.body.redis).toBe('connected');
        expect((view.body.replicas as { instanceId: string }[]).map((r) => r.instanceId)).toEqual(['replica-1', 'replica-2', 'replica-3']);
      }
    });

    it('HAProxy refuses a token far over its rate with its own 429 (problem+json, Retry-After): no replica sees those requests', async () => {
      const encryptsBefore = fleet.replicas
        .flatMap((r) => r.history.flatMap((p) => p.logRecords()))
        .filter((l) => l.msg === 'request completed' && (l.req as { url?: string } | undefined)?.url === '/v1/encrypt').length;
      const outcomes: HttpOutcome[] = [];
      const queue = Array.from({ length: FLOOD_REQUESTS }, (_, i) => i);
      const started = Date.now();
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (queue.shift() !== undefined) outcomes.push(await encrypt(fleet.haproxy.baseUrl, TOKENS.flood, { tenant: 'flood' }));
        }),
      );
      const elapsedS = (Date.now() - started) / 1000;
      const responses = outcomes.map(ok);
      const refusedByFront = responses.filter((r) => r.status === 429 && r.body.code === 'FrontTierRateLimited');
      const served = responses.filter((r) => r.status === 200);
      expect(served.length + refusedByFront.length).toBe(FLOOD_REQUESTS);
      // TOKEN_RATE requests per period pass (the table's rate slides over the period).
      expect(served.length).toBeGreaterThan(TOKEN_RATE / 2);
      expect(served.length).toBeLessThanOrEqual(Math.ceil(TOKEN_RATE * (1 + elapsedS / RATE_PERIOD_S)) + 1);
      expect(refusedByFront.length).toBeGreaterThan(FLOOD_REQUESTS / 2);
      console.info(`[fleet] flood of ${FLOOD_REQUESTS} in ${elapsedS.toFixed(1)} s: ${served.length} served by the replicas, ${refusedByFront.length} refused by HAProxy`);
      const refusal = outcomes.find((o) => o.kind === 'response' && o.status === 429);
      expect(refusal?.kind === 'response' && refusal.headers['retry-after']).toBe('7');
      expect(refusal?.kind === 'response' && refusal.headers['content-type']).toBe('application/problem+json');
      expect(refusedByFront[0]!.body).toMatchObject({ status: 429, code: 'FrontTierRateLimited', title: 'Too Many Requests' });
      // Each request a replica answers is audited (and access-logged): the refused ones appear nowhere.
      const audited = fleet.replicas.flatMap(auditEvents).filter((e) => e.userIdentity?.principalId === 'flood');
      expect(audited).toHaveLength(served.length);
      // The replicas' access logs saw as many encrypts during the flood as were served, no more.
      const encryptsLogged = () =>
        fleet.replicas
          .flatMap((r) => r.history.flatMap((p) => p.logRecords()))
          .filter((l) => l.msg === 'request completed' && (l.req as { url?: string } | undefined)?.url === '/v1/encrypt').length;
      await eventually('access log lines written', async () => (encryptsLogged() - encryptsBefore >= served.length ? true : undefined), 10_000);
      expect(encryptsLogged() - encryptsBefore).toBe(served.length);
      // Another token is not affected.
      expect(ok(await encrypt(fleet.haproxy.baseUrl, TOKENS.app, { tenant: 'other' })).status).toBe(200);
    }, 120_000);

    it('HAProxy cuts a client that sends its request too slowly (timeout http-request) with a 408', async () => {
      const socket = connect(fleet.haproxy.port, '127.0.0.1');
      let answer = '';
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      const started = Date.now();
      // Headers never finished: one more header line every 500 ms, as a slowloris client does.
      socket.write(`POST /v1/encrypt HTTP/1.1\r\nhost: fleet\r\nauthorization: Bearer ${TOKENS.app}\r\n`);
      const drip = setInterval(() => socket.writable && socket.write('x-slow: 1\r\n'), 500);
      await closed;
      clearInterval(drip);
      expect(answer).toMatch(/^HTTP\/1\.[01] 408 /);
      // Cut at the 2 s bound, not when the client gave up.
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_500);
      expect(Date.now() - started).toBeLessThan(15_000);
    }, 60_000);

    it('an evict sent to one replica drops the keys on all three: the next encrypt on each calls KMS, and each audits the origin', async () => {
      const context = { tenant: 'evict-me' };
      // Warm each replica's cache for the context: the second encrypt is a hit.
      for (const replica of fleet.replicas) {
        await encrypt(replica.baseUrl, TOKENS.app, context);
        const warm = ok(await encrypt(replica.baseUrl, TOKENS.app, context));
        expect(auditOf(replica, warm.requestId).additionalEventData?.cacheHit).toBe(true);
      }
      const evict = ok(await admin(fleet.replicas[1]!, '/v1/admin/cache/evict', { context }));
      expect(evict.status).toBe(200);
      const report = evict.body.fleet as FleetReport;
      expect(report.expected).toEqual(['replica-1', 'replica-2', 'replica-3']);
      expect(report.missing).toEqual([]);
      expect(report.degraded).toBeUndefined();
      expect(report.confirmed[0]!.instanceId).toBe('replica-2');
      expect(report.confirmed.map((c) => c.instanceId).sort()).toEqual(['replica-1', 'replica-2', 'replica-3']);
      // Each replica's encrypt key and its copy in the decrypt cache (CACHE_SEED_DECRYPT).
      for (const confirmed of report.confirmed) expect(confirmed).toMatchObject({ ok: true, dropped: 2 });

      for (const replica of fleet.replicas) {
        const next = ok(await encrypt(replica.baseUrl, TOKENS.app, context));
        const event = auditOf(replica, next.requestId);
        expect(event.additionalEventData?.cacheHit, replica.instanceId).toBe(false);
        expect(event.additionalEventData?.kmsRequestIds?.length).toBeGreaterThan(0);
      }
      // The originating replica's ApiCall event, and a FleetActionApplied on each other one, joined by the request id.
      expect(auditOf(fleet.replicas[1]!, evict.requestId)).toMatchObject({ eventName: 'EvictDataKeys', eventType: 'ApiCall' });
      for (const replica of [fleet.replicas[0]!, fleet.replicas[2]!]) {
        const applied = auditEvents(replica).find((e) => e.eventName === 'FleetActionApplied' && e.serviceEventDetails?.originRequestId === evict.requestId);
        expect(applied?.serviceEventDetails, replica.instanceId).toMatchObject({
          action: 'EvictDataKeys',
          originInstance: 'replica-2',
          principalType: 'api-key',
          principalId: 'ops',
          requestParameters: { encryptionContext: context },
          outcome: { droppedKeys: 2 },
        });
      }
    }, 120_000);

    it('a policy reload sent through HAProxy reaches all three replicas', async () => {
      for (const replica of fleet.replicas) expect(ok(await encrypt(replica.baseUrl, TOKENS.late, { tenant: 'late' })).status).toBe(401);
      writeFileSync(fleet.policyFile, policy(['app', 'flood', 'ops', 'late']));
      const reload = ok(await admin(fleet.haproxy, '/v1/admin/policy/reload'));
      expect(reload.status).toBe(200);
      const report = reload.body.fleet as FleetReport;
      expect(report.missing).toEqual([]);
      expect(report.confirmed.map((c) => c.instanceId).sort()).toEqual(['replica-1', 'replica-2', 'replica-3']);
      for (const confirmed of report.confirmed) expect(confirmed).toMatchObject({ ok: true, digest: reload.body.digest });
      for (const replica of fleet.replicas) expect(ok(await encrypt(replica.baseUrl, TOKENS.late, { tenant: 'late' })).status).toBe(200);
      const reloads = fleet.replicas.flatMap(auditEvents).filter((e) => e.eventName === 'FleetActionApplied' && e.serviceEventDetails?.action === 'ReloadPolicy');
      expect(reloads).toHaveLength(2);
    }, 120_000);

    it('each replica restarted in turn under steady load through HAProxy: no request lost', async () => {
      const outcomes: HttpOutcome[] = [];
      let running = true;
      const load = Promise.all(
        // About 13 requests a second at most: within HAProxy's per-token rate.
        Array.from({ length: 2 }, async (_, worker) => {
          for (let i = 0; running; i++) {
            outcomes.push(await encrypt(fleet.haproxy.baseUrl, TOKENS.app, { tenant: `steady-${worker}`, n: String(i % 5) }));
            await new Promise((resolve) => setTimeout(resolve, 150));
          }
        }),
      );
      try {
        for (const replica of fleet.replicas) {
          const before = outcomes.length;
          await replica.restart();
          await fleet.haproxy.waitUntilUp([haproxyServerName(replica.index)]);
          // Traffic flowed while it was away and back.
          await eventually('load continues', async () => (outcomes.length > before + 10 ? true : undefined));
        }
      } finally {
        running = false;
        await load;
      }
      const failed = outcomes.filter((o) => o.kind !== 'response' || o.status !== 200).map((o) => (o.kind === 'response' ? `${o.status} ${o.body}` : o.code));
      expect(failed).toEqual([]);
      expect(outcomes.length).toBeGreaterThan(40);
      console.info(`[fleet] rolling restart of 3 replicas: ${outcomes.length} requests, ${failed.length} failed`);
    }, 300_000);

    it('Redis killed: requests are still served, an evict answers degraded naming the replicas it missed; Redis back: the fleet answers again', async () => {
      // The fleet is whole again after the restarts: replica-1 sees the three.
      await eventually('replica-1 sees three replicas', async () => {
        const view = ok(await admin(fleet.replicas[0]!, '/v1/admin/fleet'));
        return (view.body.replicas as unknown[]).length === 3 ? true : undefined;
      });
      await fleet.redis!.kill();
      for (let i = 0; i < 10; i++) expect(ok(await encrypt(fleet.haproxy.baseUrl, TOKENS.app, { tenant: 'no-redis' })).status).toBe(200);
      const evict = ok(await admin(fleet.replicas[0]!, '/v1/admin/cache/evict', { all: true }));
      expect(evict.status).toBe(200);
      const report = evict.body.fleet as FleetReport;
      expect(report.degraded).toMatch(/Redis unreachable/);
      expect(report.confirmed.map((c) => c.instanceId)).toEqual(['replica-1']);
      expect(report.missing).toEqual(['replica-2', 'replica-3']);
      const view = ok(await admin(fleet.replicas[0]!, '/v1/admin/fleet'));
      expect(view.body.redis).toBe('unreachable');

      await fleet.redis!.start();
      // Heartbeats announce the replicas again, and the subscribers are back.
      const healed = await eventually('the fleet answers again', async () => {
        const again = ok(await admin(fleet.replicas[0]!, '/v1/admin/cache/evict', { all: true }));
        const r = again.body.fleet as FleetReport;
        return r.degraded === undefined && r.missing.length === 0 && r.confirmed.length === 3 ? r : undefined;
      }, 60_000);
      expect(healed.expected).toEqual(['replica-1', 'replica-2', 'replica-3']);
    }, 180_000);

    it("every replica's audit file verifies, and audit:verify --replica accepts the set", async () => {
      // Stopped first: the final signed checkpoint covers every line.
      await fleet.haproxy.stop();
      for (const replica of fleet.replicas) await replica.stop();
      const verify = (args: string[]) =>
        spawnSync(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src', 'cli', 'audit-verify.ts'), ...args], {
          cwd: REPO_ROOT,
          env: childEnv({ KMS_ENDPOINT: kmsEndpoint!, AWS_REGION: LOCAL_KMS_REGION, AWS_ACCESS_KEY_ID: LOCAL_KMS_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: LOCAL_KMS_CREDENTIALS.secretAccessKey }),
          encoding: 'utf8',
        });
      for (const replica of fleet.replicas) {
        const one = verify(['--kms-key-id=alias/audit-signing', `--instance=${replica.instanceId}`, replica.auditFile]);
        expect(one.status, `${replica.instanceId}: ${one.stdout}${one.stderr}`).toBe(0);
      }
      const set = verify(['--kms-key-id=alias/audit-signing', ...fleet.replicas.map((r) => `--replica=${r.auditFile}`)]);
      expect(set.status, `${set.stdout}${set.stderr}`).toBe(0);
    }, 120_000);
  });
});
