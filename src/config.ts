/**
 * Environment -> typed, validated Config.
 *
 * One TypeBox schema is the single source of truth: env-schema (Ajv) coerces and validates the
 * environment against it, and the README's configuration table documents the same names.
 * A bad value throws ConfigError naming the variable and what it accepts; the process entry
 * turns that into a message and exit code 1 before anything starts.
 */
import { isIPv4 } from 'node:net';
import { envSchema } from 'env-schema';
import { Type, type Static } from 'typebox';

const MiB = 1024 * 1024;

const LogLevel = Type.Union(
  [
    Type.Literal('fatal'),
    Type.Literal('error'),
    Type.Literal('warn'),
    Type.Literal('info'),
    Type.Literal('debug'),
    Type.Literal('trace'),
    Type.Literal('silent'),
  ],
  { default: 'info' },
);

/** The value DEV_MODE_ALLOW_NETWORK must have: whoever sets it has read what it does. */
export const DEV_MODE_NETWORK_OPT_IN = 'i-understand-this-is-open';
/** The published dev token: accepted on loopback only. */
export const DEFAULT_DEV_TOKEN = 'dev-token';

export const ConfigSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  KMS_PROVIDER: Type.Union([Type.Literal('local'), Type.Literal('aws')], { default: 'local' }),
  KMS_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://[^\\s]+$' })),
  AWS_REGION: Type.Optional(Type.String({ pattern: '^[a-z]{2}(-[a-z]+)+-\\d+$' })),
  // Key sets (src/keys/key-sets.ts): a YAML file of named sets of KMS keys, `keyset/NAME` to callers.
  KEY_SETS_FILE: Type.Optional(Type.String({ minLength: 1 })),
  // Regions a key-set decrypt tries first, in this order (comma-separated); default AWS_REGION.
  KMS_LOCAL_REGION: Type.Optional(Type.String({ pattern: '^(local|[a-z]{2}(-[a-z]+)+-\\d+)(,(local|[a-z]{2}(-[a-z]+)+-\\d+))*$' })),
  // A key set's data key missing some keys of its set (onGeneratorDown: next, a region down) is cached at most this long.
  KEY_SET_PARTIAL_MAX_AGE_MS: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 10_000 }),
  KMS_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 60_000, default: 3_000 }),
  KMS_CONNECT_TIMEOUT_MS: Type.Integer({ minimum: 50, maximum: 30_000, default: 1_000 }),
  KMS_MAX_ATTEMPTS: Type.Integer({ minimum: 1, maximum: 10, default: 3 }),
  // Circuit breaker (src/kms/circuit-breaker.ts): this many consecutive KMS calls failing with
  // Unavailable (throttling does not count) open it; it then fails fast (503) for the
  // cooldown, then probes once.
  KMS_BREAKER_FAILURES: Type.Integer({ minimum: 1, maximum: 1_000, default: 5 }),
  KMS_BREAKER_COOLDOWN_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 5_000 }),
  // Per-principal KMS call budget (src/admission/kms-budget.ts): a token bucket refilled at
  // this many calls per second, holding at most KMS_BUDGET_BURST. Cache hits cost nothing.
  KMS_BUDGET_PER_SECOND: Type.Integer({ minimum: 1, maximum: 100_000, default: 20 }),
  KMS_BUDGET_BURST: Type.Integer({ minimum: 1, maximum: 100_000, default: 100 }),
  // KMS calls one principal may have in flight; its others wait their turn (admission/kms-budget.ts).
  KMS_CONCURRENCY_PER_PRINCIPAL: Type.Integer({ minimum: 1, maximum: 10_000, default: 2 }),
  // KMS calls one principal may start per second, bursts included; its others wait (admission/kms-budget.ts).
  KMS_PACE_PER_SECOND: Type.Integer({ minimum: 1, maximum: 100_000, default: 100 }),
  // The key directory's shared look-ups (refreshes, the alias list) have a KMS queue of their
  // own, so no principal's queue delays them (keys/key-directory.ts).
  KMS_LOOKUP_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 10_000, default: 4 }),
  KMS_LOOKUP_PACE_PER_SECOND: Type.Integer({ minimum: 1, maximum: 100_000, default: 50 }),
  DEFAULT_KEY_ID: Type.String({ minLength: 1, maxLength: 2048, default: 'alias/default' }),
  LOCAL_KEYSTORE: Type.String({ minLength: 1, default: '.data/keystore.json' }),
  POLICY_FILE: Type.Optional(Type.String({ minLength: 1 })),
  // The loud opt-in that lets dev mode listen off loopback (throwaway demos only; see devModeProblem).
  DEV_MODE_ALLOW_NETWORK: Type.Optional(Type.Literal(DEV_MODE_NETWORK_OPT_IN)),
  // Read only to refuse dev mode in production; any value is accepted.
  NODE_ENV: Type.Optional(Type.String()),
  // Characters a Bearer header can carry (RFC 6750 b64token).
  DEV_TOKEN: Type.String({ minLength: 8, maxLength: 512, pattern: '^[A-Za-z0-9._~+/-]+=*$', default: DEFAULT_DEV_TOKEN }),
  CACHE_MAX_AGE_MS: Type.Integer({ minimum: 1, maximum: 86_400_000, default: 300_000 }),
  CACHE_MAX_MESSAGES: Type.Integer({ minimum: 1, maximum: 2 ** 32, default: 10_000 }),
  CACHE_MAX_BYTES: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, default: 1024 * MiB }),
  CACHE_CAPACITY: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1_000 }),
  // Per cache, the share each tenant (or principal without one) keeps whatever others fetch
  // (keys/data-key-cache.ts); keep tenants x share within 100.
  CACHE_MIN_SHARE_PERCENT: Type.Integer({ minimum: 0, maximum: 100, default: 5 }),
  // Read your writes without KMS: a data key encrypt generates or reuses is also cached for
  // decrypt (keys/envelope-service.ts seedDecrypt), under the decrypt cache's own limits.
  CACHE_SEED_DECRYPT: Type.Boolean({ default: true }),
  AUDIT_LOG: Type.String({ minLength: 1, default: '.data/audit.log' }),
  // Signed audit checkpoints (src/audit/checkpointer.ts, docs/AUDIT.md). The key: with aws, an
  // asymmetric SIGN_VERIFY key (unset: no checkpoints, logged as an error at start); with local,
  // the keystore's own signing key (if set, it must name that key).
  AUDIT_SIGNING_KEY_ID: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
  AUDIT_SIGNING_ALGORITHM: Type.Union(
    [Type.Literal('ECDSA_SHA_256'), Type.Literal('RSASSA_PKCS1_V1_5_SHA_256'), Type.Literal('RSASSA_PSS_SHA_256')],
    { default: 'ECDSA_SHA_256' },
  ),
  // A checkpoint every this many events or this often, whichever comes first: the unsigned
  // tail stays within about a minute of events.
  AUDIT_CHECKPOINT_EVERY_EVENTS: Type.Integer({ minimum: 1, maximum: 100_000_000, default: 10_000 }),
  AUDIT_CHECKPOINT_INTERVAL_MS: Type.Integer({ minimum: 1_000, maximum: 3_600_000, default: 60_000 }),
  // Each checkpoint is also appended here (one JSON line), for a shipper to send elsewhere.
  AUDIT_DIGEST_FILE: Type.Optional(Type.String({ minLength: 1 })),
  LOG_LEVEL: LogLevel,
  // The app log's queue for stdout: past it, lines are dropped and counted (app_log_dropped_lines_total), never held.
  LOG_BUFFER_MAX_BYTES: Type.Integer({ minimum: 64 * 1024, maximum: 1024 * MiB, default: 16 * MiB }),
  BODY_LIMIT_BYTES: Type.Integer({ minimum: 1024, maximum: 64 * MiB, default: 8 * MiB }),
  // The JSON routes' own, smaller limit (never above BODY_LIMIT_BYTES): large payloads go binary.
  JSON_BODY_LIMIT_BYTES: Type.Integer({ minimum: 1024, maximum: 64 * MiB, default: 1 * MiB }),
  // The streaming routes' own limit (the body limits do not apply to them): 64 GiB by default.
  STREAM_MAX_BYTES: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, default: 64 * 1024 * MiB }),
  // A stream is cut after this long without a byte in either direction (REQUEST_TIMEOUT_MS does not apply to streams).
  STREAM_IDLE_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 30_000 }),
  // The streams' spool (src/http/streams/stream-spool.ts): ciphertext held on disk for clients that send before they read.
  STREAM_SPOOL_DIR: Type.Optional(Type.String({ minLength: 1 })),
  STREAM_SPOOL_MAX_BYTES: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 4 * 1024 * MiB }),
  STREAM_SPOOL_MAX_BYTES_PER_PRINCIPAL: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 1024 * MiB }),
  MAX_IN_FLIGHT_PER_PRINCIPAL: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 128 }),
  // Of those, requests worked on at once; the others wait their turn (admission/in-flight-limit.ts).
  REQUEST_CONCURRENCY_PER_PRINCIPAL: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 8 }),
  BATCH_MAX_ITEMS: Type.Integer({ minimum: 1, maximum: 10_000, default: 100 }),
  RATE_LIMIT_MAX: Type.Integer({ minimum: 1, maximum: 10_000_000, default: 60_000 }),
  RATE_LIMIT_WINDOW_MS: Type.Integer({ minimum: 1_000, maximum: 3_600_000, default: 60_000 }),
  // Failed authentications per client address per window before 429; the window also bounds
  // the audit lines of repeated failures (src/admission/auth-failures.ts).
  AUTH_FAILURE_MAX: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 20 }),
  AUTH_FAILURE_WINDOW_MS: Type.Integer({ minimum: 1_000, maximum: 3_600_000, default: 60_000 }),
  // A 429's answer is held for its Retry-After, at most this long (0: never), so a caller that
  // retries without backing off is paced instead of taking event-loop turns (admission/refusal-hold.ts).
  REFUSAL_HOLD_MAX_MS: Type.Integer({ minimum: 0, maximum: 60_000, default: 1_000 }),
  REFUSAL_HOLD_PER_CALLER: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 64 }),
  REFUSAL_HOLD_TOTAL: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1_024 }),
  REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 30_000 }),
  // Time a client has to send the request headers (slowloris); default min(10 s, REQUEST_TIMEOUT_MS).
  HEADERS_TIMEOUT_MS: Type.Optional(Type.Integer({ minimum: 100, maximum: 600_000 })),
  SHUTDOWN_GRACE_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 10_000 }),
  MAX_EVENT_LOOP_DELAY_MS: Type.Integer({ minimum: 0, maximum: 60_000, default: 1_000 }),
  // The memory the process may use; the defaults below are shares of it. Default: the cgroup
  // (container) limit, else the machine's memory (admission/memory-limits.ts).
  MEMORY_LIMIT_BYTES: Type.Optional(Type.Integer({ minimum: 64 * MiB, maximum: Number.MAX_SAFE_INTEGER })),
  // Request bodies being received and held, per principal and in all (admission/request-buffer-budget.ts).
  REQUEST_BUFFER_MAX_BYTES: Type.Optional(Type.Integer({ minimum: 1024, maximum: Number.MAX_SAFE_INTEGER })),
  REQUEST_BUFFER_MAX_BYTES_PER_PRINCIPAL: Type.Optional(Type.Integer({ minimum: 1024, maximum: Number.MAX_SAFE_INTEGER })),
  // Memory shedding with hysteresis (admission/memory-pressure.ts): shedding starts above a mark and
  // stops once every measure is below MEMORY_LOW_WATER_PERCENT of its mark. 0 disables a mark.
  MAX_MEMORY_USED_BYTES: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
  MAX_HEAP_USED_BYTES: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
  // Off by default: RSS need not fall after a flood (freed memory stays with the allocator).
  MAX_RSS_BYTES: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 0 }),
  MEMORY_LOW_WATER_PERCENT: Type.Integer({ minimum: 1, maximum: 99, default: 75 }),
  // Refusals for memory (429 TooMuchBuffered/BufferFull, 503 Overloaded) beyond the first of a
  // kind per principal and window are counted into one RefusalsSummarized audit event.
  REFUSAL_SUMMARY_WINDOW_MS: Type.Integer({ minimum: 1_000, maximum: 3_600_000, default: 60_000 }),
  // Shared limits (src/admission/shared-limits.ts): with REDIS_URL the rate limit, in-flight
  // cap, KMS budgets and failed-authentication limiter are counted fleet-wide in this Redis;
  // a command slower than REDIS_COMMAND_TIMEOUT_MS falls back to per-process limits.
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://[^\\s]+$' })),
  REDIS_KEY_PREFIX: Type.String({ pattern: '^[A-Za-z0-9:._-]{1,64}$', default: 'envelope:' }),
  REDIS_COMMAND_TIMEOUT_MS: Type.Integer({ minimum: 10, maximum: 10_000, default: 250 }),
  REDIS_CONNECT_TIMEOUT_MS: Type.Integer({ minimum: 50, maximum: 60_000, default: 2_000 }),
  // A shared in-flight place not renewed for this long is dropped (a replica that died keeps none longer).
  REDIS_IN_FLIGHT_LEASE_MS: Type.Integer({ minimum: 1_000, maximum: 600_000, default: 30_000 }),
  READINESS_CACHE_MS: Type.Integer({ minimum: 0, maximum: 600_000, default: 5_000 }),
  INSTANCE_ID: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$' })),
  // The fleet (src/fleet/): with REDIS_URL, admin evicts and policy reloads reach every replica
  // announced by heartbeat, and the answer waits at most FLEET_CONFIRM_TIMEOUT_MS for them.
  FLEET_CONFIRM_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 60_000, default: 2_000 }),
  FLEET_HEARTBEAT_MS: Type.Integer({ minimum: 100, maximum: 60_000, default: 5_000 }),
});

export type Config = Static<typeof ConfigSchema> & {
  /** `KMS_ENDPOINT_<REGION>` variables, by region (`KMS_ENDPOINT_EU_WEST_1` -> eu-west-1). */
  KMS_REGIONAL_ENDPOINTS?: Readonly<Record<string, string>>;
};

const REGIONAL_ENDPOINT = /^KMS_ENDPOINT_([A-Z]{2}(?:_[A-Z]+)+_\d+)$/;
const ENDPOINT_URL = /^https?:\/\/[^\s]+$/;

/** The KMS endpoint of `region`: KMS_ENDPOINT_<REGION>, else KMS_ENDPOINT, else undefined (AWS's own). */
export function kmsEndpointFor(config: Pick<Config, 'KMS_ENDPOINT' | 'KMS_REGIONAL_ENDPOINTS'>, region: string | undefined): string | undefined {
  return (region !== undefined ? config.KMS_REGIONAL_ENDPOINTS?.[region] : undefined) ?? config.KMS_ENDPOINT;
}

function regionalEndpoints(env: Record<string, string | undefined>): Record<string, string> {
  const endpoints: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    const match = REGIONAL_ENDPOINT.exec(name);
    if (!match || !value) continue;
    if (!ENDPOINT_URL.test(value)) throw new ConfigError(`${name} must be an http(s) URL`);
    endpoints[match[1]!.toLowerCase().replaceAll('_', '-')] = value;
  }
  return endpoints;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

/** Reads and validates the environment. Throws ConfigError naming the first bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings are treated as unset: `FOO=` in a compose file should mean "default".
  const data = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
  let config: Config;
  try {
    // env: false, or env-schema merges process.env under `data`: an empty variable would
    // then come back unfiltered, and loadConfig(someEnv) would read the caller's environment.
    config = envSchema<Config>({ schema: ConfigSchema, data, env: false, dotenv: false });
  } catch (error) {
    throw new ConfigError(describeSchemaErrors((error as { errors?: AjvError[] }).errors, error));
  }
  return checkCrossFieldRules({ ...config, KMS_REGIONAL_ENDPOINTS: regionalEndpoints(data) });
}

function checkCrossFieldRules(config: Config): Config {
  if (config.HEADERS_TIMEOUT_MS !== undefined && config.HEADERS_TIMEOUT_MS > config.REQUEST_TIMEOUT_MS) {
    throw new ConfigError('HEADERS_TIMEOUT_MS must not exceed REQUEST_TIMEOUT_MS (the headers are part of the request)');
  }
  if (config.REDIS_URL && config.FLEET_CONFIRM_TIMEOUT_MS >= config.REQUEST_TIMEOUT_MS) {
    throw new ConfigError('FLEET_CONFIRM_TIMEOUT_MS must be below REQUEST_TIMEOUT_MS (an evict or reload answer waits that long for the other replicas)');
  }
  const devMode = devModeProblem(config);
  if (devMode) throw new ConfigError(devMode);
  if (config.KMS_PROVIDER === 'aws') {
    if (!config.POLICY_FILE) {
      throw new ConfigError('POLICY_FILE is required when KMS_PROVIDER=aws (dev-token authentication is only for the local provider)');
    }
    if (!config.AWS_REGION) {
      throw new ConfigError('AWS_REGION is required when KMS_PROVIDER=aws (for example eu-west-2)');
    }
  }
  return config;
}

/**
 * Dev mode (no POLICY_FILE) gives whoever holds DEV_TOKEN every right on every key, so it may
 * only listen on loopback, and never run under NODE_ENV=production. DEV_MODE_ALLOW_NETWORK lifts
 * the loopback rule for a throwaway demo, and only with a DEV_TOKEN of one's own: the default
 * token is published, so it is never reachable off loopback.
 */
function devModeProblem(config: Config): string | undefined {
  if (config.POLICY_FILE) return undefined;
  if (config.NODE_ENV === 'production') {
    return 'dev mode (no POLICY_FILE) is refused with NODE_ENV=production: set POLICY_FILE to a policy file (docs/POLICY.md)';
  }
  if (isLoopbackHost(config.HOST)) return undefined;
  if (config.DEV_MODE_ALLOW_NETWORK !== DEV_MODE_NETWORK_OPT_IN) {
    return (
      `dev mode (no POLICY_FILE) listens on loopback only, and HOST=${config.HOST} is not loopback: set POLICY_FILE ` +
      '(docs/POLICY.md), or HOST=127.0.0.1'
    );
  }
  if (config.DEV_TOKEN === DEFAULT_DEV_TOKEN) {
    return `DEV_MODE_ALLOW_NETWORK needs a DEV_TOKEN of your own: the default "${DEFAULT_DEV_TOKEN}" is published, and is never accepted off loopback`;
  }
  return undefined;
}

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and `localhost`: addresses no other host can reach. */
export function isLoopbackHost(host: string): boolean {
  const address = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (address === 'localhost' || address === '::1') return true;
  const ipv4 = address.replace(/^::ffff:/, '');
  return isIPv4(ipv4) && ipv4.startsWith('127.');
}

function describeSchemaErrors(errors: AjvError[] | undefined, original: unknown): string {
  const first = errors?.[0];
  if (!first) return `invalid configuration: ${String(original)}`;
  const variable = first.instancePath.replace(/^\//, '') || String(first.params.missingProperty ?? '?');
  const property = (ConfigSchema.properties as unknown as Record<string, Record<string, unknown>>)[variable];
  return `${variable}: ${first.message ?? 'is invalid'}; accepts ${describeAccepted(property)}`;
}

function describeAccepted(schema: Record<string, unknown> | undefined): string {
  if (!schema) return 'a documented value';
  if (Array.isArray(schema.anyOf)) {
    return `one of ${(schema.anyOf as { const: string }[]).map((option) => option.const).join(', ')}`;
  }
  if (typeof schema.const === 'string') return `exactly ${schema.const}`;
  if (schema.type === 'boolean') return 'true or false';
  if (schema.type === 'integer') return `an integer from ${String(schema.minimum)} to ${String(schema.maximum)}`;
  if (typeof schema.pattern === 'string') return `a string matching ${schema.pattern}`;
  return 'a non-empty string';
}
