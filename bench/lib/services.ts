/**
 * Starting the benchmark servers, every one through server-process.ts: the two bare baselines,
 * the service in each of its layer variants (same code, different environment), and the
 * service on its own for `load` and `soak`.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_DEV_TOKEN, BENCH_POLICY_FILE, BENCH_TOKEN } from './constants.js';
import type { LocalKms, RunContext } from './context.js';
import { ensureServersBuilt, type BuildKind } from './server-build.js';
import { mainThreadProfile, startServer, type ServerProcess } from './server-process.js';

/** The layer variants of case 5 (and `full`, case 1's (c)). */
export type ServiceVariant =
  | 'full'
  | 'no-audit'
  | 'no-policy'
  | 'no-app-log'
  | 'no-turns'
  | 'minimal'
  | 'cache-off-local'
  | 'local-kms'
  | 'cache-off-local-kms'
  | 'tracing-all'
  | 'tracing-1pct'
  | 'tracing-stripped';

export const VARIANT_LABELS: Record<ServiceVariant, string> = {
  full: 'everything on (local provider)',
  'no-audit': 'audit off (discarding sink)',
  'no-policy': 'policy off (dev mode)',
  'no-app-log': 'app request log off (LOG_LEVEL=warn)',
  'no-turns': 'request turns off (REQUEST_CONCURRENCY_PER_PRINCIPAL unbounded)',
  minimal: 'audit, policy and app log off',
  'cache-off-local': 'cache off (CACHE_MAX_MESSAGES=1), local provider',
  'local-kms': 'everything on, local-kms provider',
  'cache-off-local-kms': 'cache off (CACHE_MAX_MESSAGES=1), local-kms',
  'tracing-all': 'tracing on, every request sampled (OTLP to a local sink)',
  'tracing-1pct': 'tracing on, 1 % of requests sampled (OTLP to a local sink)',
  'tracing-stripped': 'everything on, tracing compiled out (spans module a pass-through, no OpenTelemetry loaded)',
};

/** The tracing variants' sampling ratio (every other variant runs with tracing off). */
const TRACING_RATIO: Partial<Record<ServiceVariant, string>> = { 'tracing-all': '1.0', 'tracing-1pct': '0.01' };

export function variantUsesTracing(variant: ServiceVariant): boolean {
  return TRACING_RATIO[variant] !== undefined;
}

/** The build a variant runs: `tracing-stripped` is `full` with tracing compiled out (server-build.ts). */
export function variantBuild(variant: ServiceVariant): BuildKind {
  return variant === 'tracing-stripped' ? 'stripped' : 'standard';
}

export function variantUsesLocalKms(variant: ServiceVariant): boolean {
  return variant === 'local-kms' || variant === 'cache-off-local-kms';
}

export interface ServiceOptions {
  /** Extra environment (e.g. CACHE_MAX_MESSAGES for the KMS economy case). */
  env?: Record<string, string>;
  /** Keep the service's default per-principal limits (the noisy-neighbour case measures them). */
  defaultLimits?: boolean;
}

export interface RunningService {
  server: ServerProcess;
  /** Headers every /v1 request needs for this variant (the bearer token). */
  auth: Record<string, string>;
}

/**
 * The per-principal limits raised out of the way: one principal drives each load, and the
 * defaults would answer 429 within a run (60,000 requests a minute), refuse the 8 MiB JSON
 * bodies and bursts of hundreds, or throttle the cache-off variants, whose one KMS call per
 * request is what they measure. The limiters still run on every request; they never trip.
 * Request turns (REQUEST_CONCURRENCY_PER_PRINCIPAL) stay at their default: they make a request
 * wait, never refuse it, and case 5's `no-turns` variant measures what they change.
 */
const LIMITS_OUT_OF_THE_WAY: Record<string, string> = {
  RATE_LIMIT_MAX: '10000000',
  JSON_BODY_LIMIT_BYTES: String(8 * 1024 * 1024),
  MAX_IN_FLIGHT_PER_PRINCIPAL: '1000000',
  KMS_BUDGET_PER_SECOND: '100000',
  KMS_BUDGET_BURST: '100000',
  KMS_PACE_PER_SECOND: '100000',
};

function serviceEnv(ctx: RunContext, name: string, variant: ServiceVariant, localKms: LocalKms | undefined): Record<string, string> {
  const env: Record<string, string> = {
    LOCAL_KEYSTORE: join(ctx.workDir, 'keystore.json'),
    AUDIT_LOG: join(ctx.workDir, `audit-${name}.log`),
    LOG_LEVEL: 'info',
    POLICY_FILE: BENCH_POLICY_FILE,
  };
  if (variant === 'no-audit' || variant === 'minimal') env.BENCH_AUDIT = 'discard';
  if (variant === 'no-policy' || variant === 'minimal') {
    delete env.POLICY_FILE;
    env.DEV_TOKEN = BENCH_DEV_TOKEN;
    // Dev mode is refused under NODE_ENV=production (the service reads NODE_ENV for nothing else).
    env.NODE_ENV = 'development';
  }
  if (variant === 'no-app-log' || variant === 'minimal') env.LOG_LEVEL = 'warn';
  if (variant === 'no-turns') env.REQUEST_CONCURRENCY_PER_PRINCIPAL = '1000000';
  if (variant === 'cache-off-local' || variant === 'cache-off-local-kms') env.CACHE_MAX_MESSAGES = '1';
  const ratio = TRACING_RATIO[variant];
  if (ratio !== undefined) {
    if (!ctx.traceSinkEndpoint) throw new Error(`variant ${variant} needs the trace sink`);
    Object.assign(env, {
      OTEL_EXPORTER_OTLP_ENDPOINT: ctx.traceSinkEndpoint,
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: ratio,
    });
  }
  if (variantUsesLocalKms(variant)) {
    if (!localKms) throw new Error(`variant ${variant} needs local-kms`);
    Object.assign(env, {
      KMS_PROVIDER: 'aws',
      KMS_ENDPOINT: localKms.endpoint,
      AWS_REGION: 'eu-west-2',
      // local-kms does not check signatures; the SDK only needs something to sign with.
      AWS_ACCESS_KEY_ID: 'local-kms-bench',
      AWS_SECRET_ACCESS_KEY: 'local-kms-bench',
    });
  }
  return env;
}

export async function startService(
  ctx: RunContext,
  name: string,
  variant: ServiceVariant,
  options: ServiceOptions = {},
): Promise<RunningService> {
  const localKms = 'endpoint' in ctx.localKms ? ctx.localKms : undefined;
  const env = { ...serviceEnv(ctx, name, variant, localKms), ...(options.defaultLimits ? {} : LIMITS_OUT_OF_THE_WAY), ...options.env };
  const server = await start(ctx, name, 'service.ts', env, { binary: ctx.settings.serviceNode, flags: ctx.settings.serviceNodeFlags }, variantBuild(variant));
  const token = env.POLICY_FILE ? BENCH_TOKEN : BENCH_DEV_TOKEN;
  return { server, auth: { authorization: `Bearer ${token}` } };
}

export async function startBare(ctx: RunContext, name: 'bare-echo' | 'bare-aes' | 'bare-stream' | 'node-pipe'): Promise<ServerProcess> {
  return start(ctx, name, `${name}.ts`, {});
}

async function start(
  ctx: RunContext,
  name: string,
  script: string,
  env: Record<string, string>,
  node: { binary?: string | undefined; flags?: string[] | undefined } = {},
  buildKind: BuildKind = 'standard',
): Promise<ServerProcess> {
  const profile = ctx.profileServers.has(name);
  ctx.log(`  starting ${name}${profile ? ' (with --cpu-prof)' : ''}`);
  const profileDir = join(ctx.profileDir, name);
  if (profile) mkdirSync(profileDir, { recursive: true });
  const built = ctx.settings.servers === 'built';
  if (built) ensureServersBuilt(ctx.log);
  const server = await startServer({
    name,
    script,
    env,
    workDir: ctx.workDir,
    built,
    buildKind,
    ...(node.binary ? { nodeBinary: node.binary } : {}),
    ...(node.flags ? { nodeFlags: node.flags } : {}),
    ...(profile ? { cpuProfileDir: profileDir } : {}),
  });
  if (!profile) return server;
  return {
    ...server,
    async stop() {
      await server.stop();
      const files = readdirSync(profileDir);
      const main = mainThreadProfile(files, server.pid);
      if (main) ctx.cpuProfiles.push({ server: name, file: join(profileDir, main) });
      else ctx.notes.push(`the main-thread profile of ${name} was not written (files: ${files.join(', ')})`);
    },
  };
}

export interface StandaloneService {
  url: string;
  pid: number;
  /** Headers every /v1 JSON request needs (the dev-mode bearer token). */
  headers: Record<string, string>;
  /** The tail of the service's output (warnings and errors only, at LOG_LEVEL=warn). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * The service for `load` and `soak`: the embedded local provider, a throwaway keystore and audit
 * log, dev-mode authentication (no policy file), LOG_LEVEL=warn, the limits out of the way;
 * every other setting is the default, the audit log included.
 */
export async function startStandaloneService(env: Record<string, string> = {}): Promise<StandaloneService> {
  const dir = mkdtempSync(join(tmpdir(), 'envelope-bench-'));
  try {
    const server = await startServer({
      name: 'service',
      script: 'service.ts',
      workDir: dir,
      env: {
        // Dev mode (DEV_TOKEN, no POLICY_FILE) is refused under NODE_ENV=production.
        NODE_ENV: 'development',
        KMS_PROVIDER: 'local',
        LOCAL_KEYSTORE: join(dir, 'keystore.json'),
        AUDIT_LOG: join(dir, 'audit.log'),
        DEV_TOKEN: BENCH_DEV_TOKEN,
        LOG_LEVEL: 'warn',
        ...LIMITS_OUT_OF_THE_WAY,
        ...env,
      },
    });
    return {
      url: server.url,
      pid: server.pid,
      headers: { authorization: `Bearer ${BENCH_DEV_TOKEN}`, 'content-type': 'application/json' },
      output: () => readFileSync(server.logFile, 'utf8').slice(-32_768),
      async stop() {
        await server.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/** POST JSON and return the parsed answer; throws on a non-2xx status. */
export async function postJson<T>(url: string, body: string, headers: Record<string, string> = {}): Promise<T> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const text = await response.text();
  if (!response.ok) throw new Error(`POST ${url}: ${response.status} ${text.slice(0, 500)}`);
  return JSON.parse(text) as T;
}

export async function withServer<S extends { stop(): Promise<void> } | RunningService, T>(
  starting: Promise<S>,
  use: (server: S) => Promise<T>,
): Promise<T> {
  const server = await starting;
  try {
    return await use(server);
  } finally {
    await ('server' in server ? server.server.stop() : server.stop());
  }
}
