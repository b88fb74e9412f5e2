/**
 * The Redocly lint gate (`npm run lint:openapi`, rules in redocly.yaml): the committed document
 * passes, and each rule we rely on really fires. Every case below breaks one thing in a copy of
 * openapi.yaml and expects the named rule to catch it, so a typo in redocly.yaml (a rule that
 * silently matches nothing) fails here instead of waving bad contracts through.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const REDOCLY = join(ROOT, 'node_modules', '.bin', 'redocly');
const CONFIG = join(ROOT, 'redocly.yaml');
const SPEC = join(ROOT, 'openapi.yaml');

// Mutations reach deep into the parsed document; its shape is the committed file, not a type.
type Doc = Record<string, any>;
type Problem = { ruleId: string; severity: string; message: string; location: { source: { ref: string }; pointer: string }[] };

/** One broken copy per case: what is changed, and the rule that must report it. */
const CASES: { name: string; rule: string; mutate: (doc: Doc) => void }[] = [
  { name: 'keys-without-503', rule: 'rule/v1-error-responses', mutate: (d) => delete d.paths['/v1/keys'].get.responses['503'] },
  { name: 'encrypt-without-413', rule: 'rule/v1-post-error-responses', mutate: (d) => delete d.paths['/v1/encrypt'].post.responses['413'] },
  { name: 'decrypt-public', rule: 'rule/v1-bearer-security', mutate: (d) => (d.paths['/v1/decrypt'].post.security = []) },
  {
    name: 'decrypt-other-scheme',
    rule: 'rule/v1-bearer-scheme-only',
    mutate: (d) => {
      d.components.securitySchemes.apiKeyHeader = { type: 'apiKey', in: 'header', name: 'x-api-key' };
      d.paths['/v1/decrypt'].post.security = [{ apiKeyHeader: [] }];
    },
  },
  {
    name: 'error-as-plain-json',
    rule: 'rule/v1-errors-are-problems',
    mutate: (d) => {
      const response = d.paths['/v1/encrypt'].post.responses['503'];
      response.content = { 'application/json': response.content['application/problem+json'] };
    },
  },
  {
    name: '4xx-not-problem-details',
    rule: 'operation-4xx-problem-details-rfc7807',
    mutate: (d) => {
      const response = d.paths['/v1/encrypt'].post.responses['400'];
      response.content = { 'application/json': response.content['application/problem+json'] };
    },
  },
  {
    name: 'rewrap-without-examples',
    rule: 'rule/request-body-examples',
    mutate: (d) => delete d.paths['/v1/rewrap'].post.requestBody.content['application/json'].examples,
  },
  {
    name: 'default-response-description',
    rule: 'rule/success-response-description',
    mutate: (d) => (d.paths['/v1/datakey'].post.responses['200'].description = 'Default Response'),
  },
  {
    name: 'example-bad-base64',
    rule: 'no-invalid-media-type-examples',
    mutate: (d) => (d.paths['/v1/encrypt'].post.requestBody.content['application/json'].examples.minimal.value.plaintext = 'not base64!'),
  },
  {
    name: 'example-unknown-field',
    rule: 'no-invalid-media-type-examples',
    mutate: (d) => (d.paths['/v1/encrypt'].post.requestBody.content['application/json'].examples.minimal.value.keyid = 'alias/default'),
  },
  { name: 'no-operation-id', rule: 'operation-operationId', mutate: (d) => delete d.paths['/v1/keys'].get.operationId },
  { name: 'no-operation-description', rule: 'operation-description', mutate: (d) => delete d.paths['/healthz'].get.description },
  { name: 'no-servers', rule: 'no-empty-servers', mutate: (d) => (d.servers = []) },
  { name: 'no-license', rule: 'info-license', mutate: (d) => delete d.info.license },
];

const workDir = mkdtempSync(join(tmpdir(), 'envelope-redocly-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

function lint(files: string[]): { status: number | null; problems: Map<string, Problem[]>; output: string } {
  const run = spawnSync(REDOCLY, ['lint', '--config', CONFIG, '--format', 'json', ...files], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
  });
  if (run.error) throw run.error;
  const problems = new Map<string, Problem[]>();
  for (const report of parseJsonStream(run.stdout)) {
    for (const problem of (report as { problems: Problem[] }).problems) {
      const file = basename(problem.location[0]?.source.ref ?? '?');
      problems.set(file, [...(problems.get(file) ?? []), problem]);
    }
  }
  return { status: run.status, problems, output: run.stdout + run.stderr };
}

/** `redocly lint --format json` prints one JSON document per file, back to back. */
function parseJsonStream(text: string): unknown[] {
  const values: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') {
      if (depth++ === 0) start = i;
    } else if (c === '}' && --depth === 0) {
      values.push(JSON.parse(text.slice(start, i + 1)));
    }
  }
  return values;
}

describe('redocly lint (redocly.yaml)', () => {
  it('passes on the committed openapi.yaml', () => {
    const result = lint([SPEC]);
    expect(result.problems.get('openapi.yaml') ?? [], result.output).toEqual([]);
    expect(result.status, result.output).toBe(0);
  }, 60_000);

  it('catches each kind of contract breakage with the intended rule', () => {
    const original = readFileSync(SPEC, 'utf8');
    const files = CASES.map((testCase) => {
      const doc = parse(original) as Doc;
      testCase.mutate(doc);
      const file = join(workDir, `${testCase.name}.yaml`);
      writeFileSync(file, stringify(doc));
      return file;
    });
    const result = lint(files);
    expect(result.status, 'lint must fail on broken documents').not.toBe(0);
    const missed = CASES.filter((testCase) => {
      const found = result.problems.get(`${testCase.name}.yaml`) ?? [];
      return !found.some((problem) => problem.ruleId === testCase.rule && problem.severity === 'error');
    }).map((testCase) => `${testCase.name}: expected an error from ${testCase.rule}, got ${JSON.stringify((result.problems.get(`${testCase.name}.yaml`) ?? []).map((p) => p.ruleId))}`);
    expect(missed).toEqual([]);
  }, 60_000);
});
