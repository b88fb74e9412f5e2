/**
 * The benchmark runner: runs every case (or a chosen group), computes ratios and targets, and
 * writes the results JSON. A full run writes bench/results/latest.json (the run the docs cite,
 * kept in git) and regenerates the results section of docs/BENCHMARKS.md and its SVG charts;
 * any other run writes bench/results/[smoke-]<timestamp>.json (ignored by git).
 * bench/commands/run.ts is the command line.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem, type as osType } from 'node:os';
import { join } from 'node:path';
import { findLocalKmsBinary, startLocalKms, type LocalKmsInstance } from '../test/helpers/local-kms.js';
import { runHttpCases, runLayerCases, FLOOR_PART_CASES, LAYER_VARIANTS } from './cases/http.js';
import { runInProcessCases } from './cases/inprocess.js';
import { runKmsEconomyCases, KMS_CASE_IDS } from './cases/kms-economy.js';
import { runNoisyNeighbourCases, runNoisyNeighbourFrontCases, NEIGHBOUR_CASE_IDS, NEIGHBOUR_FRONT_CASE_IDS } from './cases/noisy-neighbour.js';
import { runRawCryptoCases } from './cases/raw-crypto.js';
import { runStreamCases, streamCaseIds } from './cases/stream.js';
import { clientCaseIds, runClientCases } from './cases/client.js';
import { REPO_ROOT } from './lib/constants.js';
import type { RunContext } from './lib/context.js';
import { round } from './lib/load.js';
import { updateDocs } from './lib/report.js';
import type { BenchResults, CaseResult, TargetResult } from './lib/results.js';
import type { Settings } from './lib/settings.js';
import { formatSummary, summarizeProfile } from './lib/profile.js';
import { HTTP_SIZES } from './lib/sizes.js';

/** The results file of the run docs/BENCHMARKS.md cites (the only one kept in git). */
export const LATEST_RESULTS = 'latest.json';

export const CASE_GROUPS = ['http', 'large', 'layers', 'inprocess', 'kms', 'neighbour', 'neighbour-front', 'stream', 'client'] as const;

/** Every case id a complete run produces (the smoke test checks them all). */
export function expectedCaseIds(): string[] {
  const ids: string[] = [];
  for (const op of ['enc', 'dec']) for (const size of HTTP_SIZES) for (const who of ['a', 'b', 'c']) ids.push(`http.${op}.${size.key}.${who}`);
  ids.push(...FLOOR_PART_CASES);
  for (const size of ['1m', 'max']) for (const who of ['a', 'b', 'b-binary', 'c', 'raw']) ids.push(who === 'raw' ? `large.raw.${size}` : `large.enc.${size}.${who}`);
  for (const variant of LAYER_VARIANTS) ids.push(`layer.enc.1k.${variant}`);
  for (const op of ['enc', 'dec']) for (const who of ['ours', 'sdk-0478', 'sdk-0578']) ids.push(`inproc.${op}.${who}`);
  ids.push(...KMS_CASE_IDS);
  ids.push(...NEIGHBOUR_CASE_IDS);
  ids.push(...NEIGHBOUR_FRONT_CASE_IDS);
  ids.push(...streamCaseIds());
  ids.push(...clientCaseIds());
  return ids;
}

export interface RunOptions {
  settings: Settings;
  /** Where the results JSON goes (default bench/results). */
  outDir?: string;
  /** Regenerate docs/BENCHMARKS.md and its charts (default: full runs of every group only). */
  docs?: boolean;
  only?: string[];
  /** Payload sizes for the HTTP groups (1k, 64k, 1m, max); all by default. */
  sizes?: string[];
  /** HTTP case ids to leave out (e.g. large.enc.1m.c); none by default. */
  skip?: string[];
  /** Layer variants for case 5; all by default. */
  variants?: string[];
  /** Server names to profile with --cpu-prof (e.g. service-full). */
  profile?: string[];
  command?: string;
  keepWorkDir?: boolean;
  log?: (message: string) => void;
}

export interface RunOutput {
  results: BenchResults;
  file: string;
}

export async function runBenchmarks(options: RunOptions): Promise<RunOutput> {
  const log = options.log ?? ((message: string) => process.stdout.write(`${message}\n`));
  const startedAt = new Date();
  // The commit and tree the run loaded its code from: read at the start, not once the run is over.
  const git = gitInfo();
  const loadAverageAtStart = loadavg().map((value) => round(value, 2));
  const outDir = options.outDir ?? join(REPO_ROOT, 'bench', 'results');
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const workDir = mkdtempSync(join(tmpdir(), 'envelope-bench-'));
  const profileDir = join(outDir, 'profiles', stamp);
  const only = new Set(options.only ?? []);
  for (const group of only) {
    if (!(CASE_GROUPS as readonly string[]).includes(group)) throw new Error(`unknown case group ${group}; groups: ${CASE_GROUPS.join(', ')}`);
  }
  if (options.profile?.length) mkdirSync(profileDir, { recursive: true });

  const ctx: RunContext = {
    settings: options.settings,
    workDir,
    profileServers: new Set(options.profile ?? []),
    profileDir,
    localKms: { missing: 'not started' },
    only,
    sizes: new Set(options.sizes ?? []),
    skipCases: new Set(options.skip ?? []),
    variants: new Set(options.variants ?? []),
    cases: {},
    notes: [],
    cpuProfiles: [],
    log,
  };

  let localKms: LocalKmsInstance | undefined;
  try {
    const needsKms = only.size === 0 || only.has('layers') || only.has('kms') || only.has('neighbour') || only.has('neighbour-front');
    if (needsKms) {
      const binary = findLocalKmsBinary();
      if (binary) {
        log(`starting a private local-kms (${binary})`);
        localKms = await startLocalKms({ binary });
        ctx.localKms = { endpoint: localKms.endpoint, pid: localKms.pid };
      } else if (process.env.CI === 'true') {
        throw new Error('CI=true but the local-kms binary is missing (scripts/local-kms.sh install): the KMS cases must not be skipped in CI');
      } else {
        const missing = 'local-kms binary not found (run scripts/local-kms.sh install, or set LOCAL_KMS_BIN)';
        ctx.localKms = { missing };
        ctx.notes.push(`SKIPPED cases against local-kms: ${missing}`);
        log(`WARNING: ${missing}; cases against local-kms are skipped`);
      }
    }

    log('case 2 (in-process) and 4 (raw crypto reference)');
    await runInProcessCases(ctx);
    await runRawCryptoCases(ctx);
    log('case 1 (HTTP a/b/c) and 4 (large payloads over HTTP)');
    await runHttpCases(ctx);
    log('case 7 (streams)');
    await runStreamCases(ctx);
    log('case 8 (the envelope command, client-side and server-side)');
    await runClientCases(ctx);
    log('case 5 (cost of each layer)');
    await runLayerCases(ctx);
    log('case 3 (KMS economy)');
    await runKmsEconomyCases(ctx);
    log('case 6 (noisy neighbour)');
    await runNoisyNeighbourCases(ctx);
    log('case 6 through the front tier (HAProxy)');
    await runNoisyNeighbourFrontCases(ctx);
  } finally {
    await localKms?.dispose();
    if (!options.keepWorkDir) rmSync(workDir, { recursive: true, force: true });
    else log(`work dir kept: ${workDir}`);
  }

  const profiles = ctx.cpuProfiles.map(({ server, file }) => summarizeProfile(file, server));
  for (const summary of profiles) log(`\n${formatSummary(summary)}\n`);

  const { ratios, targets } = evaluate(ctx.cases);
  const results: BenchResults = {
    meta: {
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      command: options.command ?? 'npm run bench',
      ...git,
      node: process.version,
      os: `${osType()} ${release()}`,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      cpuCount: cpus().length,
      memoryGiB: round(totalmem() / 2 ** 30, 1),
      loadAverageAtStart,
      loadAverageAtEnd: loadavg().map((value) => round(value, 2)),
      packages: packageVersions(['fastify', 'autocannon', '@aws-crypto/client-node', '@aws-sdk/client-kms', 'pino']),
    },
    settings: options.settings,
    cases: ctx.cases,
    ratios,
    targets,
    notes: ctx.notes,
    profiles,
  };

  const docs = options.docs ?? (options.settings.mode === 'full' && only.size === 0 && !options.sizes?.length && !options.variants?.length && !options.skip?.length);
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, docs ? LATEST_RESULTS : `${options.settings.mode === 'smoke' ? 'smoke-' : ''}${stamp}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  log(`results: ${file}`);
  for (const target of targets) {
    log(`target ${target.id}: ${target.met === null ? 'not measured' : target.met ? 'MET' : 'MISSED'} (${target.target}; measured ${target.measured})`);
  }
  if (docs) {
    const written = updateDocs(results, file);
    log(`docs: ${written.join(', ')}`);
  }
  return { results, file };
}

// ---- ratios and targets -----------------------------------------------------------------------

function rate(cases: Record<string, CaseResult>, id: string): number | null {
  const c = cases[id];
  if (!c) return null;
  if (c.kind === 'http') return c.requestsPerSecond;
  if (c.kind === 'ops') return c.opsPerSecond;
  return null;
}

function mbps(cases: Record<string, CaseResult>, id: string): number | null {
  const c = cases[id];
  return c && (c.kind === 'http' || c.kind === 'ops' || c.kind === 'stream') ? c.mbPerSecond : null;
}

function ratio(a: number | null, b: number | null, digits = 3): number | null {
  return a !== null && b !== null && b > 0 ? round(a / b, digits) : null;
}

export function evaluate(cases: Record<string, CaseResult>): { ratios: Record<string, number | null>; targets: TargetResult[] } {
  const ratios: Record<string, number | null> = {};
  for (const op of ['enc', 'dec']) {
    for (const size of HTTP_SIZES) {
      const c = rate(cases, `http.${op}.${size.key}.c`);
      ratios[`http.${op}.${size.key}.c/a`] = ratio(c, rate(cases, `http.${op}.${size.key}.a`));
      ratios[`http.${op}.${size.key}.c/b`] = ratio(c, rate(cases, `http.${op}.${size.key}.b`));
    }
    for (const sdk of ['sdk-0478', 'sdk-0578']) {
      ratios[`inproc.${op}.ours/${sdk}`] = ratio(rate(cases, `inproc.${op}.ours`), rate(cases, `inproc.${op}.${sdk}`), 2);
    }
  }
  for (const size of ['1m', 'max']) {
    const raw = mbps(cases, `large.raw.${size}`);
    for (const who of ['a', 'b', 'b-binary', 'c', 'c-binary']) ratios[`large.${size}.${who}/raw`] = ratio(mbps(cases, `large.enc.${size}.${who}`), raw);
    ratios[`large.${size}.c/b`] = ratio(mbps(cases, `large.enc.${size}.c`), mbps(cases, `large.enc.${size}.b`));
    ratios[`large.${size}.c-binary/b-binary`] = ratio(mbps(cases, `large.enc.${size}.c-binary`), mbps(cases, `large.enc.${size}.b-binary`));
  }
  for (const size of ['small', 'large']) {
    ratios[`stream.bare.${size}/node`] = ratio(mbps(cases, `stream.bare.${size}`), mbps(cases, `stream.node.${size}`));
    for (const op of ['enc', 'dec']) {
      ratios[`stream.${op}.${size}/bare`] = ratio(mbps(cases, `stream.${op}.${size}`), mbps(cases, `stream.bare.${size}`));
      ratios[`stream.${op}.${size}/raw`] = ratio(mbps(cases, `stream.${op}.${size}`), mbps(cases, `stream.raw.${size}`));
    }
  }
  const streamGrowth = Math.max(
    ...['small', 'large'].flatMap((size) => ['enc', 'dec'].map((op) => cases[`stream.${op}.${size}`])).map((c) => (c?.kind === 'stream' ? c.rssGrowthMiB : -Infinity)),
  );
  const full = rate(cases, 'layer.enc.1k.full');
  for (const variant of LAYER_VARIANTS) ratios[`layer.${variant}/full`] = ratio(rate(cases, `layer.enc.1k.${variant}`), full);

  const target = (id: string, description: string, goal: string, measured: number | null, met: (value: number) => boolean, note?: string): TargetResult => ({
    id,
    description,
    target: goal,
    measured,
    met: measured === null ? null : met(measured),
    ...(note ? { note } : {}),
  });
  const pooledP99 = (id: string) => {
    const c = cases[id];
    return c?.kind === 'neighbour' && c.pooledP99Ms ? c.pooledP99Ms.all : null;
  };
  ratios['neighbour.flooded/alone'] = ratio(pooledP99('neighbour.b.flooded'), pooledP99('neighbour.b.alone'), 2);
  ratios['neighbour.front.flooded/alone'] = ratio(pooledP99('neighbour.front.b.flooded'), pooledP99('neighbour.front.b.alone'), 2);
  const burst = cases['kms.burst.ours'];
  const burstSdk = cases['kms.burst.sdk'];
  const targets = [
    target('http-1k-encrypt-vs-floor', '(c) service encrypt 1 KiB vs (b) bare AES-GCM route, req/s', '>= 0.9', ratios['http.enc.1k.c/b'] ?? null, (v) => v >= 0.9),
    target(
      'inprocess-encrypt-vs-sdk',
      'in-process envelope encrypt vs the Encryption SDK cached, suite 0x0478, ops/s',
      '>= 20',
      ratios['inproc.enc.ours/sdk-0478'] ?? null,
      (v) => v >= 20,
      `against 0x0578 (ECDSA P-384, the SDK default): ${ratios['inproc.enc.ours/sdk-0578'] ?? 'n/a'}×`,
    ),
    target(
      'burst-one-kms-call',
      `${burst?.kind === 'kms' ? burst.requests : 200} concurrent cold encrypts on one context -> GenerateDataKey calls`,
      '== 1',
      burst?.kind === 'kms' ? burst.generateDataKeyCalls : null,
      (v) => v === 1,
      burstSdk?.kind === 'kms' ? `the Encryption SDK's caching CMM made ${burstSdk.generateDataKeyCalls}` : undefined,
    ),
    target(
      'stream-vs-bare-route',
      'service /v1/encrypt/stream vs the bare streaming route (same stack, no crypto), larger size, MB/s',
      '>= 0.8',
      ratios['stream.enc.large/bare'] ?? null,
      (v) => v >= 0.8,
      `decrypt: ${ratios['stream.dec.large/bare'] ?? 'n/a'}×; against raw AES-256-GCM in-process: encrypt ${ratios['stream.enc.large/raw'] ?? 'n/a'}×, decrypt ${ratios['stream.dec.large/raw'] ?? 'n/a'}×`,
    ),
    target(
      'stream-bare-vs-node',
      'the bare streaming route (Fastify, pipe back) vs a plain node:http server piping the body back, larger size, MB/s',
      '>= 0.9',
      ratios['stream.bare.large/node'] ?? null,
      (v) => v >= 0.9,
    ),
    target(
      'stream-rss-growth',
      'server peak RSS growth over idle during one stream (worst of encrypt and decrypt at both sizes), MiB',
      '< 64',
      Number.isFinite(streamGrowth) ? streamGrowth : null,
      (v) => v < 64,
    ),
    target(
      'large-1m-vs-raw-crypto',
      '(c) service encrypt 1 MiB over HTTP (binary API, /v1/encrypt/binary) vs raw node:crypto AES-256-GCM in-process, MB/s',
      '>= 0.5',
      ratios['large.1m.c-binary/raw'] ?? null,
      (v) => v >= 0.5,
      `the JSON API (/v1/encrypt, base64 in JSON): ${ratios['large.1m.c/raw'] ?? 'n/a'}×`,
    ),
    target(
      'neighbour-front-p99',
      "case 6 through HAProxy: B's pooled p99 while A floods vs B alone",
      '<= 1.25',
      ratios['neighbour.front.flooded/alone'] ?? null,
      (v) => v <= 1.25,
      `straight to the service (case 6): ${ratios['neighbour.flooded/alone'] ?? 'n/a'}×`,
    ),
  ];
  return { ratios, targets };
}

// ---- metadata ---------------------------------------------------------------------------------

function gitInfo(): { gitCommit: string; gitDirty: boolean } {
  try {
    const gitCommit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    const status = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: REPO_ROOT, encoding: 'utf8' });
    return { gitCommit, gitDirty: status.trim().length > 0 };
  } catch {
    return { gitCommit: 'unknown', gitDirty: false };
  }
}

function packageVersions(names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    try {
      out[name] = (JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      out[name] = 'missing';
    }
  }
  return out;
}
