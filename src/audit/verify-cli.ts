/**
 * `npm run audit:verify -- [--strict] [--anchor=SEQUENCE:SHA256] FILE`
 *
 * Exit codes: 0 chain intact, 1 verification failed (the first bad line is named),
 * 2 usage error or the file cannot be read.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ChainHead } from './chain.js';
import { formatVerifyResult, verifyAuditLog } from './verify.js';

const USAGE = `usage: npm run audit:verify -- [--strict] [--anchor=SEQUENCE:SHA256] FILE

Verifies the hash chain of an audit log written by the envelope service.
  --strict                  also fail when the chain was resumed after a damaged line (crash mid-write)
  --anchor=SEQUENCE:SHA256  a chain head published earlier: the event with that sequence must be
                            in the file with that hash (catches a truncated or rewritten tail)
Exit codes: 0 intact, 1 verification failed, 2 usage error or unreadable file.`;

const ANCHOR = /^(\d{1,15}):([0-9a-f]{64})$/;

export interface CliOutput {
  out: (text: string) => void;
  err: (text: string) => void;
}

const processOutput: CliOutput = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
};

export async function main(argv: readonly string[], output: CliOutput = processOutput): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { strict: { type: 'boolean' }, anchor: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    output.err(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    output.out(USAGE);
    return 0;
  }
  const file = positionals[0];
  if (positionals.length !== 1 || file === undefined) {
    output.err(USAGE);
    return 2;
  }
  let anchor: ChainHead | undefined;
  if (values.anchor !== undefined) {
    const match = ANCHOR.exec(values.anchor);
    if (!match) {
      output.err(`bad --anchor ${values.anchor}: want SEQUENCE:SHA256 (64 lowercase hex)\n${USAGE}`);
      return 2;
    }
    anchor = { sequence: Number(match[1]), hash: match[2] as string };
  }

  let result;
  try {
    result = await verifyAuditLog(file, { strict: values.strict === true, ...(anchor && { anchor }) });
  } catch (error) {
    output.err(`cannot read ${file}: ${(error as Error).message}`);
    return 2;
  }
  const report = formatVerifyResult(result);
  if (result.ok) {
    output.out(report);
    return 0;
  }
  output.err(report);
  return 1;
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  process.exitCode = await main(process.argv.slice(2));
}
