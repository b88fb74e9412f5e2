/**
 * The process entry of `envelope migrate` (src/migrate/command.ts), also usable on its own:
 * `tsx src/cli/envelope-migrate.ts --key-id K --out-dir DIR ...`.
 */
import { runMigrate } from '../migrate/command.js';
import { isEntryPoint } from './entry-point.js';

if (isEntryPoint(import.meta.url)) {
  process.exitCode = await runMigrate(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
}
