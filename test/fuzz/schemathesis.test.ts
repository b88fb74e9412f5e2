/**
 * API fuzzing with schemathesis against openapi.yaml and a freshly started service
 * (scripts/schemathesis.sh: installs schemathesis into .tools/venv from PyPI when missing,
 * starts the service on loopback, runs every default check, bounded in examples and time).
 * Part of `npm test` so that the README's one test command runs every test there is.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const script = fileURLToPath(new URL('../../scripts/schemathesis.sh', import.meta.url));
const hasPython = spawnSync('python3', ['--version']).status === 0;

describe('schemathesis', () => {
  it.skipIf(!hasPython && process.env.CI !== 'true')(
    'finds no failure in any operation of openapi.yaml',
    () => {
      const result = spawnSync('bash', [script], { encoding: 'utf8', timeout: 540_000, maxBuffer: 64 * 1024 * 1024 });
      const output = `${result.stdout}\n${result.stderr}`;
      if (result.status !== 0) console.error(output.slice(-20_000));
      expect(result.status, 'schemathesis reported failures (output above)').toBe(0);
    },
    600_000,
  );
});
