/**
 * local-kms for tests: where the shared instance is, what its seed contains, and private
 * instances for tests that must stop and restart KMS (readiness, fault injection).
 *
 * The shared instance is started once per run by test/helpers/global-setup.ts (or by CI with
 * scripts/local-kms.sh) and published as LOCAL_KMS_ENDPOINT. Private instances run the same
 * binary with the same seed on a port of their own and a fresh data directory.
 *
 * local-kms facts these helpers rely on (see its src/server.go, start.go):
 * - PORT=0 makes it bind a free port, which it logs as "Local KMS started on 0.0.0.0:<port>";
 *   it always binds every interface, and we only ever talk to 127.0.0.1.
 * - It does not check SigV4 signatures, but the SDK still needs some credentials to sign.
 * - It sends no x-amzn-RequestId header, so `$metadata.requestId` is absent ('unknown'); a test
 *   that follows the id puts fault-proxy.ts's `addRequestIds` in front of it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';
import type { AwsKmsSettings } from '../../src/kms/aws.js';
import { reapOnExit } from './reap-children.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Endpoint of the shared local-kms, '' when none is available (suites then skip). */
    localKmsEndpoint: string;
  }
}

export const LOCAL_KMS_REGION = 'eu-west-2';
export const LOCAL_KMS_ACCOUNT_ID = '111122223333';
export const LOCAL_KMS_ARN_PREFIX = `arn:aws:kms:${LOCAL_KMS_REGION}:${LOCAL_KMS_ACCOUNT_ID}:`;
export const LOCAL_KMS_SEED_PATH = fileURLToPath(new URL('../fixtures/local-kms-seed.yaml', import.meta.url));
/** local-kms ignores signatures; these only let the SDK sign. */
export const LOCAL_KMS_CREDENTIALS = { accessKeyId: 'local-kms-test', secretAccessKey: 'local-kms-test' };

const seededKey = (keyId: string) => ({ keyId, keyArn: `${LOCAL_KMS_ARN_PREFIX}key/${keyId}` });

/** Mirrors test/fixtures/local-kms-seed.yaml: one key per alias. */
export const LOCAL_KMS_SEED = {
  keys: {
    default: seededKey('3c74e818-3bfc-40a7-98ed-587a0d03d226'),
    tenantA: seededKey('6f743fd5-495b-4da8-bcea-73337f197393'),
    tenantB: seededKey('c5cb2bf8-1279-4770-884a-d2dcc6323fe2'),
  },
  aliases: {
    'alias/default': '3c74e818-3bfc-40a7-98ed-587a0d03d226',
    'alias/tenant-a': '6f743fd5-495b-4da8-bcea-73337f197393',
    'alias/tenant-b': 'c5cb2bf8-1279-4770-884a-d2dcc6323fe2',
    'alias/audit-signing': '0d7e4a8c-5b1f-4c2e-9a3d-6f8b2c1e7a90',
    'alias/audit-signing-other': '9b2c6e1f-3a7d-4e5b-8c0f-1d4a7e2b9c63',
  },
  /** ECC_NIST_P256 SIGN_VERIFY keys for the audit checkpoints. */
  signingKeys: {
    audit: seededKey('0d7e4a8c-5b1f-4c2e-9a3d-6f8b2c1e7a90'),
    otherInstance: seededKey('9b2c6e1f-3a7d-4e5b-8c0f-1d4a7e2b9c63'),
  },
} as const;

/**
 * The shared local-kms endpoint, or undefined when none is available (outside CI only:
 * global setup throws in CI). Reads the environment first (set by CI or by global setup
 * before workers start), then vitest's provide/inject channel.
 */
export function localKmsEndpoint(): string | undefined {
  const fromEnv = process.env.LOCAL_KMS_ENDPOINT;
  if (fromEnv) return fromEnv;
  try {
    return inject('localKmsEndpoint') || undefined;
  } catch {
    return undefined; // not inside a vitest worker
  }
}

/** True when real-KMS suites must be skipped: no endpoint and not CI (CI must fail instead). */
export function skipWithoutLocalKms(): boolean {
  return !localKmsEndpoint() && process.env.CI !== 'true';
}

/** AwsKmsProvider settings for a local-kms endpoint, with test-friendly timeouts. */
export function localKmsSettings(endpoint: string, overrides: Partial<AwsKmsSettings> = {}): AwsKmsSettings {
  return {
    KMS_ENDPOINT: endpoint,
    AWS_REGION: LOCAL_KMS_REGION,
    KMS_TIMEOUT_MS: 5_000,
    KMS_CONNECT_TIMEOUT_MS: 1_000,
    KMS_MAX_ATTEMPTS: 2,
    INSTANCE_ID: 'vitest',
    ...overrides,
  };
}

/** $LOCAL_KMS_BIN, `local-kms` on PATH, $(go env GOPATH)/bin, ~/go/bin (as scripts/local-kms.sh). */
export function findLocalKmsBinary(): string | undefined {
  const fromEnv = process.env.LOCAL_KMS_BIN;
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'local-kms'))) return join(dir, 'local-kms');
  }
  const gopath = spawnSync('go', ['env', 'GOPATH'], { encoding: 'utf8' });
  const goBin = gopath.status === 0 ? join(gopath.stdout.trim(), 'bin', 'local-kms') : undefined;
  if (goBin && existsSync(goBin)) return goBin;
  const homeBin = join(homedir(), 'go', 'bin', 'local-kms');
  return existsSync(homeBin) ? homeBin : undefined;
}

/** True when `endpoint` answers ListAliases with the seeded alias/default. */
export async function isLocalKmsReady(endpoint: string, timeoutMs = 2_000): Promise<boolean> {
  try {
    const response = await fetch(endpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': 'TrentService.ListAliases' },
      body: '{}',
      signal: AbortSignal.timeout(timeoutMs),
    });
    return response.ok && (await response.text()).includes('"alias/default"');
  } catch {
    return false;
  }
}

export interface LocalKmsInstance {
  /** http://127.0.0.1:<port>; unchanged across restart(). */
  readonly endpoint: string;
  readonly port: number;
  /** The running process's pid (the bench pins it to a CPU); undefined while stopped. */
  readonly pid: number | undefined;
  /** Stops the process (SIGTERM, then SIGKILL); keys created meanwhile survive in the data dir. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data dir (stopping it first if running). */
  restart(): Promise<void>;
  /** Stops it and deletes its data dir. */
  dispose(): Promise<void>;
}

export interface StartLocalKmsOptions {
  /** The region and account in its ARNs (KMS_REGION, KMS_ACCOUNT_ID); default LOCAL_KMS_REGION, LOCAL_KMS_ACCOUNT_ID. */
  region?: string;
  accountId?: string;
  binary?: string;
  seedPath?: string;
  startTimeoutMs?: number;
}

/** Starts a private local-kms on a free loopback port, seeded like the shared one. */
export async function startLocalKms(options: StartLocalKmsOptions = {}): Promise<LocalKmsInstance> {
  const binary = options.binary ?? findLocalKmsBinary();
  if (!binary) throw new Error('local-kms binary not found: run scripts/local-kms.sh install, or set LOCAL_KMS_BIN');
  const seedPath = resolve(options.seedPath ?? LOCAL_KMS_SEED_PATH);
  const timeoutMs = options.startTimeoutMs ?? 20_000;
  const dataDir = mkdtempSync(join(tmpdir(), 'local-kms-test-'));

  const identity = { region: options.region ?? LOCAL_KMS_REGION, accountId: options.accountId ?? LOCAL_KMS_ACCOUNT_ID };
  let running = await launch(binary, { port: 0, seedPath, dataDir, timeoutMs, ...identity });
  const port = running.port;
  const endpoint = `http://127.0.0.1:${port}`;

  const stop = async (): Promise<void> => {
    if (running) await terminate(running.child);
  };
  return {
    endpoint,
    port,
    get pid() {
      return running.child.exitCode === null ? running.child.pid : undefined;
    },
    stop,
    async restart() {
      await stop();
      // Same port so clients configured with `endpoint` reconnect; Go sets SO_REUSEADDR.
      running = await launch(binary, { port, seedPath, dataDir, timeoutMs, ...identity });
    },
    async dispose() {
      await stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

// ---- process management ----------------------------------------------------------------------

interface Launched {
  child: ChildProcess;
  port: number;
}

async function launch(
  binary: string,
  { port, seedPath, dataDir, timeoutMs, region, accountId }: { port: number; seedPath: string; dataDir: string; timeoutMs: number; region: string; accountId: string },
): Promise<Launched> {
  const child = spawn(binary, [], {
    env: {
      ...process.env,
      PORT: String(port),
      KMS_REGION: region,
      KMS_ACCOUNT_ID: accountId,
      KMS_SEED_PATH: seedPath,
      KMS_DATA_PATH: dataDir,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  reapOnExit(child);

  // local-kms logs every request: keep draining its pipes (a full pipe would block it) and
  // keep only a tail for error messages.
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-16_384);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);

  const deadline = Date.now() + timeoutMs;
  const fail = async (why: string): Promise<never> => {
    await terminate(child);
    throw new Error(`local-kms ${why}; output:\n${output}`);
  };
  let boundPort = port;
  while (boundPort === 0) {
    const match = /Local KMS started on [^:\s]*:(\d+)/.exec(output);
    if (match?.[1]) boundPort = Number(match[1]);
    else if (child.exitCode !== null) await fail(`exited with code ${child.exitCode} during start`);
    else if (Date.now() > deadline) await fail('did not report its port in time');
    else await sleep(25);
  }
  const endpoint = `http://127.0.0.1:${boundPort}`;
  while (!(await isLocalKmsReady(endpoint, 1_000))) {
    if (child.exitCode !== null) await fail(`exited with code ${child.exitCode} during start`);
    if (Date.now() > deadline) await fail(`did not answer on ${endpoint} in time`);
    await sleep(50);
  }
  return { child, port: boundPort };
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}
