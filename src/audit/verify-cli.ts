/**
 * `npm run audit:verify -- [--strict] [--anchor=SEQUENCE:SHA256] [--after=SEQUENCE:SHA256|any] [--sort] FILE...`
 *
 * Exit codes: 0 chain intact, 1 verification failed (the first bad line is named),
 * 2 usage error or the file cannot be read.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { ChainHead } from './chain.js';
import { RotatedOrderError, sortRotatedFiles } from './rotated-order.js';
import { formatVerifyResult, verifyAuditLogs } from './verify.js';

const USAGE = `usage: npm run audit:verify -- [--strict] [--anchor=SEQUENCE:SHA256] [--after=SEQUENCE:SHA256|any] [--sort] FILE...

Verifies the hash chain of an audit log written by the envelope service. Several FILEs are
the files of one rotated log, oldest first (audit.log.2 audit.log.1 audit.log); each must
continue the one before it, so a missing or cut file fails. *.gz files are read decompressed.
  --strict                  also fail when the chain was resumed after a damaged line (crash mid-write)
  --anchor=SEQUENCE:SHA256  a chain head published earlier: the event with that sequence must be
                            in the files with that hash (catches a truncated or rewritten tail)
  --after=SEQUENCE:SHA256   the first file continues this head (the "head:" printed when the older,
                            since removed, files were verified); "any" accepts any start and prints it
  --sort                    order the FILEs as logrotate names them (a shell glob: audit.log*)
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
      options: {
        strict: { type: 'boolean' },
        anchor: { type: 'string' },
        after: { type: 'string' },
        sort: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
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
  if (positionals.length === 0) {
    output.err(USAGE);
    return 2;
  }
  let files = positionals;
  if (values.sort) {
    try {
      files = sortRotatedFiles(positionals);
    } catch (error) {
      if (!(error instanceof RotatedOrderError)) throw error;
      output.err(`${error.message}\n${USAGE}`);
      return 2;
    }
  }
  if (new Set(files).size !== files.length) {
    output.err(`a file is given twice\n${USAGE}`);
    return 2;
  }
  const anchor = values.anchor === undefined ? undefined : parseHead(values.anchor);
  if (anchor === null) {
    output.err(`bad --anchor ${values.anchor ?? ''}: want SEQUENCE:SHA256 (64 lowercase hex)\n${USAGE}`);
    return 2;
  }
  const after = values.after === undefined || values.after === 'any' ? values.after : parseHead(values.after);
  if (after === null) {
    output.err(`bad --after ${values.after ?? ''}: want SEQUENCE:SHA256 (64 lowercase hex) or any\n${USAGE}`);
    return 2;
  }

  let result;
  try {
    result = await verifyAuditLogs(files, {
      strict: values.strict === true,
      ...(anchor && { anchor }),
      ...(after !== undefined && { after }),
    });
  } catch (error) {
    output.err(`cannot read ${files.join(', ')}: ${(error as Error).message}`);
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

/** SEQUENCE:SHA256 as a chain head, or null if malformed. */
function parseHead(text: string): ChainHead | null {
  const match = ANCHOR.exec(text);
  return match ? { sequence: Number(match[1]), hash: match[2] as string } : null;
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
