/** The production app logger (createAppLogger, redaction backstop included) at trace level, writing into memory. */
import { Writable } from 'node:stream';
import { createAppLogger } from '../../src/logging.js';

export interface CapturedAppLog {
  logger: ReturnType<typeof createAppLogger>;
  /** Each line as written (JSON text ending in a newline). */
  raw: string[];
  /** The lines parsed. */
  readonly lines: Record<string, unknown>[];
  /** Everything written, as one string. */
  text(): string;
}

export function captureAppLog(): CapturedAppLog {
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      raw.push(String(chunk));
      done();
    },
  });
  const logger = createAppLogger({ LOG_LEVEL: 'trace' }, { destination: sink });
  return {
    logger,
    raw,
    get lines() {
      return raw.map((line) => JSON.parse(line) as Record<string, unknown>);
    },
    text: () => raw.join(''),
  };
}
