/**
 * The application log (pino): JSON lines in production, pretty in a terminal. Separate from
 * the audit log. Redaction is a backstop only: nothing in this codebase logs request bodies,
 * headers or key material in the first place.
 */
import { createRequire } from 'node:module';
import pino, { type Logger } from 'pino';
import type { Config } from './config.js';

export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  '*.authorization',
  '*.plaintext',
  '*.plaintextKey',
  '*.ciphertext',
  '*.wrappedKey',
  '*.token',
  '*.aad',
];

export function createAppLogger(config: Pick<Config, 'LOG_LEVEL'>, options: { pretty?: boolean } = {}): Logger {
  const pretty = (options.pretty ?? process.stdout.isTTY) && hasPinoPretty();
  return pino({
    level: config.LOG_LEVEL,
    base: { service: 'envelope-service' },
    redact: { paths: REDACTED_PATHS, censor: '[REDACTED]' },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service' } } } : {}),
  });
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
