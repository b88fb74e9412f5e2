/**
 * API fuzzing with schemathesis against openapi.yaml and a freshly started service
 * (scripts/schemathesis.sh: installs schemathesis into .tools/venv from PyPI when missing,
 * starts the service on loopback, runs every default check, bounded in examples and time).
 * Part of `npm test` so that the README's one test command runs every test there is.
 *
 * Budget: with DEEP_TESTS=1 (.ci/run sets it) every phase at more examples per operation, with
 * a time cap that leaves room for every operation the API has; otherwise a
 * quick pass of every check over every operation: the examples, fuzzing and stateful phases
 * with fewer examples each, without the coverage phase's exhaustive boundary values (most of
 * the time of a full run). SCHEMATHESIS_MAX_EXAMPLES, SCHEMATHESIS_PHASES and
 * SCHEMATHESIS_TIMEOUT_S, when set, win either way.
 *
 * Seed: fixed in the quick run (the same requests every time), fresh and printed under
 * DEEP_TESTS=1 (test/helpers/seed.ts); SCHEMATHESIS_SEED, when set, wins. A failure names the
 * command that replays it.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { testSeed } from '../helpers/seed.js';

const script = fileURLToPath(new URL('../../scripts/schemathesis.sh', import.meta.url));
const runnable = spawnSync('python3', ['--version']).status === 0 || process.env.CI === 'true';
if (!runnable) console.warn('[schemathesis] python3 not found: the API fuzzing suite is SKIPPED');

const QUICK_BUDGET = {
  SCHEMATHESIS_MAX_EXAMPLES: '25',
  SCHEMATHESIS_PHASES: 'examples,fuzzing,stateful',
  SCHEMATHESIS_TIMEOUT_S: '240',
};
const DEEP_BUDGET = {
  SCHEMATHESIS_MAX_EXAMPLES: '150',
  SCHEMATHESIS_TIMEOUT_S: '1200',
};
const budget = process.env.DEEP_TESTS === '1' ? DEEP_BUDGET : QUICK_BUDGET;
const seed = String(testSeed('test/fuzz/schemathesis.test.ts').seed);

describe.skipIf(!runnable)('schemathesis', () => {
  it(
    'finds no failure in any operation of openapi.yaml',
    () => {
      const result = spawnSync('bash', [script], {
        encoding: 'utf8',
        env: { ...budget, SCHEMATHESIS_SEED: seed, ...process.env },
        timeout: 1_260_000,
        maxBuffer: 64 * 1024 * 1024,
      });
      const output = `${result.stdout}\n${result.stderr}`;
      if (result.status !== 0) console.error(output.slice(-20_000));
      const replay = /replay: (.*)/.exec(output)?.[1] ?? `SCHEMATHESIS_SEED=${seed} scripts/schemathesis.sh`;
      expect(result.status, `schemathesis reported failures (output above); replay: ${replay}`).toBe(0);
    },
    1_300_000,
  );
});
