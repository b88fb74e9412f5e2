/**
 * `tsx bench/main.ts profile-summary <file.cpuprofile> [--top 25] [--json]`: any V8 CPU profile
 * by self time, top frames and categories (lib/profile.ts).
 */
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { formatSummary, summarizeProfile } from '../lib/profile.js';

export async function profileSummary(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { top: { type: 'string', default: '25' }, json: { type: 'boolean', default: false } },
  });
  const file = positionals[0];
  if (!file) {
    process.stderr.write('usage: tsx bench/main.ts profile-summary <file.cpuprofile> [--top N] [--json]\n');
    return 2;
  }
  const summary = summarizeProfile(file, basename(file, '.cpuprofile'), Number(values.top));
  process.stdout.write(values.json ? `${JSON.stringify(summary, null, 2)}\n` : `${formatSummary(summary)}\n`);
  return 0;
}
