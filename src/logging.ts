/**
 * The application log (pino): JSON lines in production, pretty in a terminal. Separate from
 * the audit log. Redaction is a backstop only: nothing in this codebase logs request bodies,
 * headers or key material in the first place.
 */
import { createRequire } from 'node:module';
import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { trackAppLogDrops } from './app-log-drops.js';
import { censorNamedFields } from './censor.js';
import { ConfigSchema, type Config } from './config.js';
import { activeTraceIds, spansEnabled } from './telemetry/spans.js';

/** Field names censored wherever they appear one level into a log line (see censorLogFields). */
export const SECRET_LOG_FIELDS = ['authorization', 'cookie', 'plaintext', 'plaintextKey', 'ciphertext', 'wrappedKey', 'token', 'aad'] as const;
export const LOG_CENSOR = '[REDACTED]';

/**
 * The redaction backstop, run by pino on every line's own object (`formatters.log`): a field
 * named like a secret is censored at the top level and one level down (`{headers: {authorization}}`,
 * `{body: {plaintext}}`). Plain objects only: class instances such as the request Fastify logs
 * are left to their serializers, which never include headers or bodies.
 *
 * Hand-written instead of pino's `redact` paths, whose path matcher runs on every line and
 * costs a noticeable share of a small request's CPU. This check allocates nothing unless it
 * finds something, and never mutates the logged objects.
 */
export function censorLogFields(line: Record<string, unknown>): Record<string, unknown> {
  let result = censorOwn(line);
  for (const key in result) {
    const value = result[key];
    if (!isPlainObject(value)) continue;
    const censored = censorOwn(value);
    if (censored !== value) result = { ...result, [key]: censored };
  }
  return result;
}

function censorOwn(fields: Record<string, unknown>): Record<string, unknown> {
  return censorNamedFields(fields, SECRET_LOG_FIELDS, LOG_CENSOR);
}

/** Object literals and null-prototype objects (Node's header maps), not class instances. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

export interface AppLoggerOptions {
  /** Pretty lines (pino-pretty) instead of JSON; default: when stdout is a terminal. */
  pretty?: boolean;
  /** Where JSON lines go instead of stdout (tests). */
  destination?: DestinationStream;
}

/** The stdout queue's bound when the config does not give one: LOG_BUFFER_MAX_BYTES's default. */
const DEFAULT_LOG_BUFFER_MAX_BYTES = (ConfigSchema.properties.LOG_BUFFER_MAX_BYTES as unknown as { default: number }).default;

export function createAppLogger(
  config: Pick<Config, 'LOG_LEVEL'> & Partial<Pick<Config, 'AUDIT_LOG' | 'LOG_BUFFER_MAX_BYTES'>>,
  options: AppLoggerOptions = {},
): Logger {
  const pretty = !options.destination && (options.pretty ?? process.stdout.isTTY) && hasPinoPretty();
  const settings: LoggerOptions = {
    level: config.LOG_LEVEL,
    base: { service: 'envelope-service' },
    formatters: { log: censorLogFields },
    // The trace of the request a line is about, when tracing is on: from a log line to its trace.
    // Tracing off (decided before any logger exists, src/tracing.ts): no mixin, no call per line.
    ...(spansEnabled()
      ? {
          mixin: traceFields,
          // pino's default merge writes the line's fields into the mixin's object: NO_TRACE is shared.
          mixinMergeStrategy: (line: object, trace: object) => (trace === NO_TRACE ? line : Object.assign(trace, line)),
        }
      : {}),
    ...(pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service' } } } : {}),
  };
  if (options.destination) return pino(settings, options.destination);
  if (pretty) return pino(settings);
  // Asynchronous writes to stdout (pino's default for stdout, made explicit): a line goes out at
  // once when no write is in flight, and the lines that come while one is go out together in
  // the next. pino flushes what is still queued when the process exits (a crash included;
  // SIGKILL loses at most the lines of one write). Synchronous with AUDIT_LOG=stdout: the audit
  // log's own writes are synchronous (src/audit/), and two writers on one descriptor, one of
  // them on libuv's thread pool, could split each other's lines in a pipe.
  // The queue is bounded: behind a stalled reader, lines past the bound are dropped and counted
  // (src/app-log-drops.ts) rather than held until the process runs out of memory.
  const stdout = pino.destination({
    dest: 1,
    sync: config.AUDIT_LOG === 'stdout',
    maxLength: config.LOG_BUFFER_MAX_BYTES ?? DEFAULT_LOG_BUFFER_MAX_BYTES,
  });
  const logger = pino(settings, stdout);
  trackAppLogDrops(logger, stdout);
  return logger;
}

const NO_TRACE = {};

/** traceId and spanId of the active span; no fields when tracing is off or outside a request. */
function traceFields(): object {
  const ids = activeTraceIds();
  return ids ? { traceId: ids.traceId, spanId: ids.spanId } : NO_TRACE;
}

/** pino-pretty is a dev dependency: production images log JSON whatever the terminal. */
function hasPinoPretty(): boolean {
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}
