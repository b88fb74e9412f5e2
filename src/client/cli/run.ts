/**
 * The `envelope` command's dispatcher: finds the subcommand in the table (commands.ts), parses
 * its options with node:util parseArgs (strict: an unknown option is a usage error), runs it,
 * and turns any failure into one line on stderr and an exit code (exit-codes.ts).
 */
import { parseArgs } from 'node:util';
import { COMMANDS } from './commands.js';
import { COMMON_OPTIONS, clientFrom, type Io } from './command.js';
import { EXIT, UsageError, describeFailure, exitCodeOf } from './exit-codes.js';
import type { EnvelopeClient } from '../client.js';

export const USAGE = `usage: envelope <command> [options] [args]

Commands:
${COMMANDS.map((command) => `  ${command.name.padEnd(10)} ${command.summary}`).join('\n')}

"envelope <command> --help" for a command's options. The service: ENVELOPE_URL or --url; the
token: ENVELOPE_TOKEN or --token-file PATH.

Exit codes: 0 done, 1 other failure (a file), 2 usage, 3 unauthenticated (401), 4 forbidden (403),
5 key not found or disabled (404, 409), 6 ciphertext cannot be opened (tampered, truncated, wrong
key or context; 422), 7 service unavailable or limiting, unreachable or timed out (429, 503),
8 any other refusal of the service (400, 413).`;

export async function run(argv: readonly string[], io: Io): Promise<number> {
  const note = (text: string) => void io.stderr.write(`envelope: ${text}\n`);
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? io.stderr : io.stdout).write(`${USAGE}\n`);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const command = COMMANDS.find((candidate) => candidate.name === name);
  if (!command) {
    io.stderr.write(`envelope: unknown command "${name}"\n${USAGE}\n`);
    return EXIT.usage;
  }
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: [...rest], options: { ...COMMON_OPTIONS, ...command.options }, allowPositionals: true, strict: true });
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    if (parsed.values.help) {
      io.stdout.write(`${command.usage}\n`);
      return EXIT.ok;
    }
    let client: EnvelopeClient | undefined;
    return await command.run({
      values: parsed.values,
      operands: parsed.positionals,
      io,
      client: () => (client ??= clientFrom(parsed.values, io.env)),
      note,
    });
  } catch (error) {
    note(`${command.name}: ${describeFailure(error)}`);
    if (error instanceof UsageError) io.stderr.write(`${command.usage}\n`);
    return exitCodeOf(error);
  }
}
