/**
 * `npm run bench` (bench/main.ts run): every case, about 12 to 15 minutes; writes
 * bench/results/latest.json and regenerates the results section of docs/BENCHMARKS.md and
 * docs/benchmarks/*.svg. `npm run bench:smoke` (run --smoke): every case for a second or two;
 * writes bench/results/smoke-<timestamp>.json only.
 *
 * Options:
 *   --only http,large,layers,inprocess,kms,neighbour,neighbour-front,stream   run some case groups (docs are then not touched);
 *                                            neighbour-front: case 6 with HAProxy in front
 *   --profile service-full[,bare-aes,...]    run those server children under node --cpu-prof and
 *                                            summarise the profiles (lib/profile.ts)
 *   --out <dir>                              results directory (default bench/results)
 *   --docs / --no-docs                       force or skip regenerating docs/BENCHMARKS.md
 *   --keep                                   keep the scratch directory (server logs, audit logs)
 *   --report <results.json>                  only regenerate docs/BENCHMARKS.md and charts from a results file
 *   --sizes 1k,64k,1m,max                    payload sizes of the HTTP groups
 *   --variants no-audit,minimal,...          layer variants of case 5
 *   --skip large.enc.1m.c,...                HTTP case ids to leave out
 *   --duration <s> --warmup <s> --connections <n>   override the HTTP settings (also shorten the smoke run)
 *   --neighbour-rounds <n>                   case 6's rounds (full run: 5)
 *   --neighbour-env KEY=VALUE,...            case 6's service settings over the defaults, e.g.
 *                                            KMS_PACE_PER_SECOND=100000 to see what the pace does
 *   --servers built|source                   the server children from the tsc build, as production
 *                                            runs (default; smoke: source), or the source through tsx
 *   --service-node <path> --service-node-flags a,b   run the service children on that node
 *                                            binary (e.g. the image's Node 24), with those flags
 *   --pin-http same|split                    cases 1 and 4: the server on one CPU and the load
 *                                            generator on the same one or the other (server CPU
 *                                            per request without, or with, the client's wake-ups)
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { runBenchmarks } from '../runner.js';
import { updateDocs } from '../lib/report.js';
import type { BenchResults } from '../lib/results.js';
import { FULL, SMOKE } from '../lib/settings.js';

export async function run(args: string[]): Promise<number> {
  const value = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const list = (name: string): string[] | undefined => value(name)?.split(',').filter(Boolean);

  const reportFrom = value('--report');
  if (reportFrom) {
    const file = resolve(reportFrom);
    const written = updateDocs(JSON.parse(readFileSync(file, 'utf8')) as BenchResults, file);
    process.stdout.write(`wrote ${written.join(', ')}\n`);
    return 0;
  }

  const smoke = args.includes('--smoke');
  const settings = { ...(smoke ? SMOKE : FULL) };
  if (value('--duration')) settings.durationSeconds = Number(value('--duration'));
  if (value('--warmup')) settings.warmupSeconds = Number(value('--warmup'));
  if (value('--connections')) settings.connections = Number(value('--connections'));
  if (value('--neighbour-rounds')) settings.neighbourRounds = Number(value('--neighbour-rounds'));
  if (value('--service-node')) {
    settings.serviceNode = value('--service-node')!;
    settings.serviceNodeVersion = execFileSync(settings.serviceNode, ['--version'], { encoding: 'utf8' }).trim();
  }
  if (list('--service-node-flags')) settings.serviceNodeFlags = list('--service-node-flags')!;
  const servers = value('--servers');
  if (servers !== undefined) {
    if (servers !== 'built' && servers !== 'source') throw new Error(`--servers takes built or source, not ${servers}`);
    settings.servers = servers;
  }
  const pinHttp = value('--pin-http');
  if (pinHttp !== undefined) {
    if (pinHttp !== 'same' && pinHttp !== 'split') throw new Error(`--pin-http takes same or split, not ${pinHttp}`);
    settings.pinHttp = pinHttp;
  }
  const neighbourEnv = list('--neighbour-env');
  if (neighbourEnv) {
    settings.neighbourEnv = {};
    for (const pair of neighbourEnv) {
      const at = pair.indexOf('=');
      if (at <= 0) throw new Error(`--neighbour-env takes KEY=VALUE pairs, not ${pair}`);
      settings.neighbourEnv[pair.slice(0, at)] = pair.slice(at + 1);
    }
  }
  const { results } = await runBenchmarks({
    settings,
    ...(value('--out') ? { outDir: value('--out')! } : {}),
    ...(args.includes('--docs') ? { docs: true } : args.includes('--no-docs') ? { docs: false } : {}),
    ...(list('--only') ? { only: list('--only')! } : {}),
    ...(list('--profile') ? { profile: list('--profile')! } : {}),
    ...(list('--sizes') ? { sizes: list('--sizes')! } : {}),
    ...(list('--variants') ? { variants: list('--variants')! } : {}),
    ...(list('--skip') ? { skip: list('--skip')! } : {}),
    keepWorkDir: args.includes('--keep'),
    command: `npm run bench${smoke ? ':smoke' : ''}${args.filter((a) => a !== '--smoke').length ? ` -- ${args.filter((a) => a !== '--smoke').join(' ')}` : ''}`,
  });
  const missed = results.targets.filter((t) => t.met === false).length;
  process.stdout.write(`done: ${Object.keys(results.cases).length} cases, ${missed} target(s) missed\n`);
  return 0;
}
