#!/usr/bin/env node
/** The `envelope` command (the package's bin): run.ts does the work; this is the process. */
import { run } from './run.js';

process.exitCode = await run(process.argv.slice(2), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env });
