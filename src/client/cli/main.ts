#!/usr/bin/env node
/** The `envelope` command (the package's bin): run.ts does the work; this is the process. */
import { removeTemporaries } from './output.js';
import { run } from './run.js';

// Interrupted: no partial output may stay behind (output.ts), then the shell's usual status.
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  process.once(signal, () => {
    removeTemporaries();
    process.exit(code);
  });
}

process.exitCode = await run(process.argv.slice(2), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env });
