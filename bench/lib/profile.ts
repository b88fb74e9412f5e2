/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`) by SELF time: the top frames, and the
 * share of each category (our src/, Fastify, validation/serialization, logging, crypto, GC...).
 *
 * `npm run bench -- --profile service-full` profiles the service child during its cases and
 * puts this summary into the results JSON; `bench/main.ts profile-summary` summarises any file.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { ProfileFrame, ProfileSummary } from './results.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const CATEGORY_RULES: [RegExp, string][] = [
  [/\/node_modules\/(fastify|find-my-way|avvio|light-my-request|@fastify\/(error|merge-json-schemas|forwarded|proxy-addr)|toad-cache|process-warning|abstract-logging|rfdc)\//, 'fastify'],
  [/\/node_modules\/(ajv|ajv-formats|fast-json-stringify|fast-uri|json-schema-ref-resolver|secure-json-parse|@fastify\/ajv-compiler|@fastify\/fast-json-stringify-compiler|fast-deep-equal)\//, 'validation + serialization'],
  [/\/node_modules\/(pino|pino-std-serializers|sonic-boom|fast-redact|@pinojs|thread-stream|quick-format-unescaped|safe-stable-stringify|on-exit-leak-free|atomic-sleep)\//, 'logging (pino)'],
  [/\/node_modules\/@fastify\/(rate-limit|under-pressure|swagger|swagger-ui)\//, 'fastify plugins (rate limit, under-pressure)'],
  [/\/node_modules\/prom-client\//, 'metrics (prom-client)'],
  [/\/node_modules\/lru-cache\//, 'lru-cache'],
  [/\/node_modules\/@aws-sdk\/|\/node_modules\/@smithy\//, 'AWS SDK'],
  [/\/node_modules\/tsx\//, 'tsx loader'],
  [/\/src\/audit\//, 'ours: src/audit'],
  [/\/src\/authz\//, 'ours: src/authz'],
  [/\/src\/(format|keys)\//, 'ours: src/format, src/keys'],
  [/\/src\/http\//, 'ours: src/http'],
  [/\/src\/kms\//, 'ours: src/kms'],
  [/\/src\//, 'ours: src (other)'],
  [/\/bench\//, 'bench server code'],
  [/\/node_modules\//, 'other dependencies'],
  [/^node:internal\/crypto|^node:crypto/, 'node: crypto'],
  [/^node:(internal\/)?(_http|http|net|stream|internal\/streams|internal\/stream_base_commons|internal\/http)/, 'node: http/net/streams'],
  [/^node:(internal\/)?(fs|internal\/fs)/, 'node: fs'],
  [/^node:/, 'node: other'],
];

export function categorize(frame: CallFrame): string {
  if (frame.functionName === '(idle)') return 'idle';
  if (frame.functionName === '(garbage collector)') return 'GC';
  if (frame.functionName === '(program)') return 'V8/native (program)';
  if (frame.functionName === '(root)') return 'root';
  for (const [pattern, category] of CATEGORY_RULES) if (pattern.test(frame.url)) return category;
  return frame.url ? 'other' : 'native builtins';
}

export function summarizeProfile(file: string, server: string, top = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

  const frames = new Map<string, { frame: CallFrame; us: number }>();
  const categories: Record<string, number> = {};
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    const category = categorize(frame);
    if (category === 'idle') {
      idleUs += us;
      continue;
    }
    totalUs += us;
    categories[category] = (categories[category] ?? 0) + us;
    const key = `${frame.functionName}|${frame.url}|${frame.lineNumber}`;
    const entry = frames.get(key) ?? { frame, us: 0 };
    entry.us += us;
    frames.set(key, entry);
  }
  const pct = (us: number) => Math.round((1000 * us) / Math.max(totalUs, 1)) / 10;
  const topFrames: ProfileFrame[] = [...frames.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map(({ frame, us }) => ({
      functionName: frame.functionName || '(anonymous)',
      location: frame.url ? `${shortUrl(frame.url)}:${frame.lineNumber + 1}` : '(native)',
      selfMs: Math.round(us / 100) / 10,
      selfPercent: pct(us),
      category: categorize(frame),
    }));
  const byCategory = Object.fromEntries(
    Object.entries(categories)
      .sort(([, a], [, b]) => b - a)
      .map(([name, us]) => [name, pct(us)]),
  );
  return {
    server,
    file,
    totalMs: Math.round(totalUs / 1000),
    byCategory: { ...byCategory, ...(idleUs > 0 ? { 'idle (excluded above)': Math.round(idleUs / 1000) } : {}) },
    top: topFrames,
  };
}

function shortUrl(url: string): string {
  const path = url.replace(/^file:\/\//, '');
  const nodeModules = path.lastIndexOf('/node_modules/');
  if (nodeModules >= 0) return path.slice(nodeModules + '/node_modules/'.length);
  const repo = /\/(src|bench|test)\/.*/.exec(path);
  return repo ? repo[0].slice(1) : path;
}

export function formatSummary(summary: ProfileSummary): string {
  const lines = [
    `${summary.server}: ${summary.totalMs} ms of non-idle CPU samples (${basename(summary.file)})`,
    '',
    'By category (% of non-idle self time):',
    ...Object.entries(summary.byCategory).map(([name, value]) => `  ${String(value).padStart(6)}  ${name}`),
    '',
    'Top frames by self time:',
    '   self%   self ms  function  (location)  [category]',
    ...summary.top.map(
      (f) => `  ${f.selfPercent.toFixed(1).padStart(6)}  ${f.selfMs.toFixed(1).padStart(8)}  ${f.functionName}  (${f.location})  [${f.category}]`,
    ),
  ];
  return lines.join('\n');
}
