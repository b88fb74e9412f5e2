/**
 * Environment -> typed, validated Config.
 *
 * One TypeBox schema is the single source of truth: env-schema (Ajv) coerces and validates the
 * environment against it, and the README's configuration table documents the same names.
 * A bad value throws ConfigError naming the variable and what it accepts; the process entry
 * turns that into a message and exit code 1 before anything starts.
 */
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

export const ConfigSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  KMS_PROVIDER: Type.Union([Type.Literal('local'), Type.Literal('aws')], { default: 'local' }),
  KMS_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://[^\\s]+$' })),
  AWS_REGION: Type.Optional(Type.String({ pattern: '^[a-z]{2}(-[a-z]+)+-\\d+$' })),
  KMS_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 60_000, default: 3_000 }),
  KMS_CONNECT_TIMEOUT_MS: Type.Integer({ minimum: 50, maximum: 30_000, default: 1_000 }),
  KMS_MAX_ATTEMPTS: Type.Integer({ minimum: 1, maximum: 10, default: 3 }),
  // Circuit breaker (src/kms/circuit-breaker.ts): this many consecutive KMS calls failing with
  // Unavailable (throttling does not count) open it; it then fails fast (503) for the
  // cooldown, then probes once.
  KMS_BREAKER_FAILURES: Type.Integer({ minimum: 1, maximum: 1_000, default: 5 }),
  KMS_BREAKER_COOLDOWN_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 5_000 }),
  // Per-principal KMS call budget (src/envelope/kms-budget.ts): a token bucket refilled at
  // this many calls per second, holding at most KMS_BUDGET_BURST. Cache hits cost nothing.
  KMS_BUDGET_PER_SECOND: Type.Integer({ minimum: 1, maximum: 100_000, default: 20 }),
  KMS_BUDGET_BURST: Type.Integer({ minimum: 1, maximum: 100_000, default: 100 }),
  DEFAULT_KEY_ID: Type.String({ minLength: 1, maxLength: 2048, default: 'alias/default' }),
  LOCAL_KEYSTORE: Type.String({ minLength: 1, default: '.data/keystore.json' }),
  POLICY_FILE: Type.Optional(Type.String({ minLength: 1 })),
  // Characters a Bearer header can carry (RFC 6750 b64token).
  DEV_TOKEN: Type.String({ minLength: 8, maxLength: 512, pattern: '^[A-Za-z0-9._~+/-]+=*$', default: 'dev-token' }),
  CACHE_MAX_AGE_MS: Type.Integer({ minimum: 1, maximum: 86_400_000, default: 300_000 }),
  CACHE_MAX_MESSAGES: Type.Integer({ minimum: 1, maximum: 2 ** 32, default: 10_000 }),
  CACHE_MAX_BYTES: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, default: 1024 * MiB }),
  CACHE_CAPACITY: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1_000 }),
  AUDIT_LOG: Type.String({ minLength: 1, default: '.data/audit.log' }),
  LOG_LEVEL: LogLevel,
  BODY_LIMIT_BYTES: Type.Integer({ minimum: 1024, maximum: 64 * MiB, default: 8 * MiB }),
  BATCH_MAX_ITEMS: Type.Integer({ minimum: 1, maximum: 10_000, default: 100 }),
  RATE_LIMIT_MAX: Type.Integer({ minimum: 1, maximum: 10_000_000, default: 60_000 }),
  RATE_LIMIT_WINDOW_MS: Type.Integer({ minimum: 1_000, maximum: 3_600_000, default: 60_000 }),
  REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 30_000 }),
  // Time a client has to send the request headers (slowloris); default min(10 s, REQUEST_TIMEOUT_MS).
  HEADERS_TIMEOUT_MS: Type.Optional(Type.Integer({ minimum: 100, maximum: 600_000 })),
  SHUTDOWN_GRACE_MS: Type.Integer({ minimum: 100, maximum: 600_000, default: 10_000 }),
  MAX_EVENT_LOOP_DELAY_MS: Type.Integer({ minimum: 0, maximum: 60_000, default: 1_000 }),
  READINESS_CACHE_MS: Type.Integer({ minimum: 0, maximum: 600_000, default: 5_000 }),
  INSTANCE_ID: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$' })),
});

export type Config = Static<typeof ConfigSchema>;

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
  return checkCrossFieldRules(config);
}

function checkCrossFieldRules(config: Config): Config {
  if (config.HEADERS_TIMEOUT_MS !== undefined && config.HEADERS_TIMEOUT_MS > config.REQUEST_TIMEOUT_MS) {
    throw new ConfigError('HEADERS_TIMEOUT_MS must not exceed REQUEST_TIMEOUT_MS (the headers are part of the request)');
  }
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
  if (schema.type === 'integer') return `an integer from ${String(schema.minimum)} to ${String(schema.maximum)}`;
  if (typeof schema.pattern === 'string') return `a string matching ${schema.pattern}`;
  return 'a non-empty string';
}
