/**
 * A fleet on loopback for tests and the bench: one redis-server, N service processes (the
 * process entry, as the ops tests run it: test/ops/helpers/service-process.ts) against a
 * shared local-kms, and one HAProxy running deploy/haproxy/haproxy.cfg as it is, configured
 * through its environment. Every port is probed free; every child is killed when the test
 * process exits (reap-children.ts).
 *
 * Each piece can be stopped, killed and started again on the same port (rolling restarts,
 * Redis down), so the shared-limit checks can reuse the same harness.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOCAL_KMS_CREDENTIALS, LOCAL_KMS_REGION } from './local-kms.js';
import { reapOnExit } from './reap-children.js';
import { REPO_ROOT, childEnv, startService, type Exit, type ServiceProcess } from '../ops/helpers/service-process.js';

export const HAPROXY_CONFIG = join(REPO_ROOT, 'deploy', 'haproxy', 'haproxy.cfg');
export const REDIS_SERVER = process.env.REDIS_SERVER_PATH || '/usr/bin/redis-server';
export const HAPROXY = process.env.HAPROXY_PATH || '/usr/sbin/haproxy';

/** The binaries the fleet needs that are missing (empty: a fleet can start). */
export function missingFleetTools(): string[] {
  return [REDIS_SERVER, HAPROXY].filter((path) => !existsSync(path));
}

/** A free loopback port (bound then released: the child binds it right after). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number, exited?: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    const gone = exited?.();
    if (gone) throw new Error(`${what}: ${gone}`);
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function exitOf(child: ChildProcess): Promise<Exit> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((done) => child.once('exit', (code, signal) => done({ code, signal })));
}

async function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = exitOf(child);
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(timer);
}

// ---- redis-server -------------------------------------------------------------------------

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  readonly running: boolean;
  start(): Promise<void>;
  /** SIGKILL: Redis gone at once, as in a crash. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedis(dir: string): Promise<RedisServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    async start() {
      // No persistence: every start is an empty Redis, as after losing a cache node.
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'];
      const started = spawn(REDIS_SERVER, args, { env: childEnv({}), stdio: ['ignore', 'pipe', 'pipe'] });
      reapOnExit(started);
      child = started;
      let output = '';
      started.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      started.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      await waitFor('redis-server start', () => output.includes('Ready to accept connections'), 15_000, () =>
        started.exitCode !== null ? `exited ${started.exitCode}:\n${output}` : undefined,
      );
    },
    kill: () => stopChild(child, 'SIGKILL', 1_000),
    stop: () => stopChild(child, 'SIGTERM', 5_000),
  };
  await server.start();
  return server;
}

// ---- replicas -----------------------------------------------------------------------------

export interface Replica {
  readonly index: number;
  readonly instanceId: string;
  readonly port: number;
  readonly baseUrl: string;
  readonly auditFile: string;
  /** The running process (replaced by start()). */
  readonly process: ServiceProcess;
  /** Every process this replica has run, oldest first (their logs). */
  readonly history: ServiceProcess[];
  start(): Promise<void>;
  /** SIGTERM (graceful shutdown) and wait for the exit. */
  stop(): Promise<Exit>;
  restart(): Promise<void>;
}

export interface ReplicaSettings {
  dir: string;
  kmsEndpoint: string;
  policyFile: string;
  redisUrl: string | undefined;
  env?: Record<string, string>;
}

/** The environment of replica `index`: AWS provider on local-kms, its own audit log, signed checkpoints. */
export function replicaEnv(index: number, port: number, settings: ReplicaSettings): Record<string, string> {
  return {
    PORT: String(port),
    HOST: '127.0.0.1',
    INSTANCE_ID: `replica-${index}`,
    KMS_PROVIDER: 'aws',
    KMS_ENDPOINT: settings.kmsEndpoint,
    AWS_REGION: LOCAL_KMS_REGION,
    AWS_ACCESS_KEY_ID: LOCAL_KMS_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_KMS_CREDENTIALS.secretAccessKey,
    POLICY_FILE: settings.policyFile,
    AUDIT_LOG: join(settings.dir, `audit-replica-${index}.log`),
    AUDIT_SIGNING_KEY_ID: 'alias/audit-signing',
    LOG_LEVEL: 'info',
    // A busy two-core machine runs three replicas, HAProxy and the load: no shedding on lag.
    MAX_EVENT_LOOP_DELAY_MS: '0',
    SHUTDOWN_GRACE_MS: '10000',
    FLEET_HEARTBEAT_MS: '500',
    FLEET_CONFIRM_TIMEOUT_MS: '5000',
    ...(settings.redisUrl ? { REDIS_URL: settings.redisUrl } : {}),
    ...settings.env,
  };
}

export async function startReplica(index: number, settings: ReplicaSettings): Promise<Replica> {
  const port = await freePort();
  const env = replicaEnv(index, port, settings);
  const history: ServiceProcess[] = [];
  const replica: Replica = {
    index,
    instanceId: env.INSTANCE_ID!,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    auditFile: env.AUDIT_LOG!,
    get process() {
      return history[history.length - 1]!;
    },
    history,
    async start() {
      history.push(await startService(env, 60_000));
    },
    stop: () => replica.process.stop(30_000),
    async restart() {
      await replica.stop();
      await replica.start();
    },
  };
  await replica.start();
  return replica;
}

// ---- HAProxy ------------------------------------------------------------------------------

export interface ServerState {
  name: string;
  /** UP, DOWN, MAINT, `UP 1/2` while rising... as the stats page says. */
  status: string;
}

export interface Haproxy {
  readonly port: number;
  /** The process (the bench pins it to the generators' CPUs). */
  readonly pid: number | undefined;
  readonly baseUrl: string;
  readonly statsUrl: string;
  output(): string;
  /** The replicas' check status, from /stats;csv. */
  servers(): Promise<ServerState[]>;
  /** Waits until every listed server (default all) is UP. */
  waitUntilUp(names?: string[], timeoutMs?: number): Promise<void>;
  /** SIGUSR1: soft stop (stops listening, finishes open requests). */
  stop(): Promise<void>;
}

export async function startHaproxy(dir: string, replicas: { port: number }[], env: Record<string, string> = {}): Promise<Haproxy> {
  const port = await freePort();
  const statsPort = await freePort();
  const replicaVars = Object.fromEntries(replicas.map((replica, i) => [`ENVELOPE_REPLICA_${i + 1}`, `127.0.0.1:${replica.port}`]));
  const child = spawn(HAPROXY, ['-db', '-f', HAPROXY_CONFIG], {
    cwd: dir,
    env: childEnv({
      HAPROXY_BIND: `127.0.0.1:${port}`,
      HAPROXY_STATS_BIND: `127.0.0.1:${statsPort}`,
      HAPROXY_CHECK_INTER: '250ms',
      ...replicaVars,
      ...env,
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  reapOnExit(child);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const statsUrl = `http://127.0.0.1:${statsPort}`;
  const servers = async (): Promise<ServerState[]> => {
    const text = await (await fetch(`${statsUrl}/stats;csv`, { signal: AbortSignal.timeout(2_000) })).text();
    const [header, ...rows] = text.split('\n').filter(Boolean);
    const columns = header!.replace(/^# /, '').split(',');
    const at = (name: string) => columns.indexOf(name);
    return rows
      .map((row) => row.split(','))
      .filter((cells) => cells[at('pxname')] === 'replicas' && !['FRONTEND', 'BACKEND'].includes(cells[at('svname')]!))
      .map((cells) => ({ name: cells[at('svname')]!, status: cells[at('status')]! }));
  };
  const proxy: Haproxy = {
    port,
    pid: child.pid,
    baseUrl: `http://127.0.0.1:${port}`,
    statsUrl,
    output: () => output,
    servers,
    async waitUntilUp(names, timeoutMs = 30_000) {
      await waitFor(
        `HAProxy: replicas ${names?.join(', ') ?? 'all'} UP`,
        async () => {
          try {
            const states = await servers();
            return states.filter((s) => !names || names.includes(s.name)).every((s) => s.status === 'UP');
          } catch {
            return false;
          }
        },
        timeoutMs,
        () => (child.exitCode !== null ? `haproxy exited ${child.exitCode}:\n${output}` : undefined),
      );
    },
    stop: () => stopChild(child, 'SIGUSR1', 10_000),
  };
  await proxy.waitUntilUp();
  return proxy;
}

/** HAProxy's name for replica `index` (1-based) in deploy/haproxy/haproxy.cfg. */
export const haproxyServerName = (index: number) => `replica${index}`;

// ---- the whole fleet ----------------------------------------------------------------------

export interface FleetOptions {
  kmsEndpoint: string;
  /** The policy file's text (all replicas read the same file). */
  policy: string;
  replicas?: number;
  /** false: no Redis (each replica alone, as without REDIS_URL). */
  redis?: boolean;
  replicaEnv?: Record<string, string>;
  haproxyEnv?: Record<string, string>;
}

export interface Fleet {
  readonly dir: string;
  readonly policyFile: string;
  readonly redis: RedisServer | undefined;
  readonly replicas: Replica[];
  readonly haproxy: Haproxy;
  stop(): Promise<void>;
}

export async function startFleet(options: FleetOptions): Promise<Fleet> {
  const dir = mkdtempSync(join(tmpdir(), 'envelope-fleet-'));
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, options.policy);
  const redis = options.redis === false ? undefined : await startRedis(dir);
  const settings: ReplicaSettings = { dir, kmsEndpoint: options.kmsEndpoint, policyFile, redisUrl: redis?.url, ...(options.replicaEnv ? { env: options.replicaEnv } : {}) };
  const replicas: Replica[] = [];
  try {
    // One after the other: three cold starts at once on two cores can exceed a start timeout.
    for (let i = 1; i <= (options.replicas ?? 3); i++) replicas.push(await startReplica(i, settings));
    const haproxy = await startHaproxy(dir, replicas, options.haproxyEnv);
    return {
      dir,
      policyFile,
      redis,
      replicas,
      haproxy,
      async stop() {
        await haproxy.stop();
        await Promise.all(replicas.map((replica) => replica.stop()));
        await redis?.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await Promise.all(replicas.map((replica) => replica.stop()));
    await redis?.stop();
    throw error;
  }
}

/** `haproxy -c`: the config file parses with this environment (the replicas' addresses given). */
export function checkHaproxyConfig(env: Record<string, string> = {}): { ok: boolean; output: string } {
  const result = spawnSync(HAPROXY, ['-c', '-f', HAPROXY_CONFIG], {
    env: childEnv({ ENVELOPE_REPLICA_1: '127.0.0.1:1', ENVELOPE_REPLICA_2: '127.0.0.1:2', ENVELOPE_REPLICA_3: '127.0.0.1:3', ...env }),
    encoding: 'utf8',
  });
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}` };
}
