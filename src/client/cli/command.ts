/**
 * What every subcommand is: its name, usage, options (node:util parseArgs), and run(). The
 * table of subcommands is commands.ts; the options every one takes are here.
 */
import { readFileSync } from 'node:fs';
import type { ParseArgsConfig } from 'node:util';
import { EnvelopeClient } from '../client.js';
import type { Context } from '../context-header.js';
import { UsageError } from './exit-codes.js';

export type OptionSpecs = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface Io {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

export interface Invocation {
  values: Values;
  operands: string[];
  io: Io;
  /** The client, made on first use from --url/ENVELOPE_URL and --token-file/ENVELOPE_TOKEN. */
  client: () => EnvelopeClient;
  /** A line on stderr. */
  note: (text: string) => void;
}

export interface Command {
  name: string;
  /** One line, for the command list. */
  summary: string;
  /** The usage lines of this subcommand. */
  usage: string;
  options: OptionSpecs;
  run: (invocation: Invocation) => Promise<number>;
}

/** Options every subcommand takes. The token is never an argument: argv lands in shell history and `ps`. */
export const COMMON_OPTIONS: OptionSpecs = {
  url: { type: 'string' },
  'token-file': { type: 'string' },
  'timeout-ms': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

export const COMMON_USAGE = `Common options:
  --url URL            the service (default: ENVELOPE_URL)
  --token-file PATH    a file holding the bearer token (default: the ENVELOPE_TOKEN variable);
                       never a flag with the token itself, which would land in shell history
  --timeout-ms N       per request; for streams the longest silence (default 30000)
  -h, --help           this help`;

export function clientFrom(values: Values, env: NodeJS.ProcessEnv): EnvelopeClient {
  const url = stringOption(values, 'url') ?? env.ENVELOPE_URL;
  if (!url) throw new UsageError('no service: set ENVELOPE_URL or pass --url');
  const tokenFile = stringOption(values, 'token-file');
  let token: string | undefined;
  if (tokenFile !== undefined) {
    try {
      token = readFileSync(tokenFile, 'utf8').trim();
    } catch (error) {
      throw new UsageError(`cannot read --token-file ${tokenFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  } else token = env.ENVELOPE_TOKEN?.trim();
  if (!token) throw new UsageError('no token: set ENVELOPE_TOKEN or pass --token-file PATH');
  const timeout = stringOption(values, 'timeout-ms');
  const timeoutMs = timeout === undefined ? undefined : Number(timeout);
  if (timeoutMs !== undefined && !(Number.isInteger(timeoutMs) && timeoutMs > 0)) throw new UsageError('--timeout-ms takes a positive integer');
  try {
    return new EnvelopeClient({ baseUrl: url, token, userAgent: 'envelope-cli', ...(timeoutMs ? { timeoutMs } : {}) });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export function stringOption(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

/** `--context k=v`, repeatable, into a context; a repeated key is a usage error, never "last wins". */
export function contextOption(values: Values): Context | undefined {
  const raw = values.context;
  if (raw === undefined) return undefined;
  const pairs = (Array.isArray(raw) ? raw : [raw]).filter((value): value is string => typeof value === 'string');
  const context: Record<string, string> = Object.create(null);
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UsageError(`--context takes key=value, not "${pair}"`);
    const key = pair.slice(0, at);
    if (key in context) throw new UsageError(`--context repeats the key "${key}"`);
    context[key] = pair.slice(at + 1);
  }
  return context;
}
