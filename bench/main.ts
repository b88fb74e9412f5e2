/**
 * The benchmark's one entry point: `tsx bench/main.ts <command> [options]`.
 *
 *   run               the benchmark cases against their baselines (npm run bench, bench:smoke)
 *   floor             the in-process floor of one encrypt, step by step (npm run bench:floor)
 *   load              max throughput, then 80 % of it sustained without an error (npm run load)
 *   soak              minutes of traffic over many contexts, memory and cache size watched (npm run soak)
 *   checkpoint        what signed audit checkpoints add per audited request (npm run bench:checkpoint)
 *   audit-line        what serializing and writing one audit event costs (npm run bench:audit-line)
 *   profile-summary   a V8 .cpuprofile by self time
 *
 * Each command's options are in its file under bench/commands/. Exit status: 0 ok, 1 a check
 * failed (load, soak), 2 bad usage or a crash.
 */
import { auditLine } from './commands/audit-line.js';
import { checkpoint } from './commands/checkpoint.js';
import { floor } from './commands/floor.js';
import { load } from './commands/load.js';
import { profileSummary } from './commands/profile-summary.js';
import { run } from './commands/run.js';
import { soak } from './commands/soak.js';

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  run,
  floor,
  load,
  soak,
  checkpoint,
  'audit-line': auditLine,
  'profile-summary': profileSummary,
};

const [name, ...args] = process.argv.slice(2);
const command = name ? COMMANDS[name] : undefined;
if (!command) {
  process.stderr.write(`usage: tsx bench/main.ts <${Object.keys(COMMANDS).join('|')}> [options]\n`);
  process.exit(2);
}
command(args).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench ${name} failed: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exit(2);
  },
);
