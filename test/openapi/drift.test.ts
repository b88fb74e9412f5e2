/**
 * openapi.yaml is generated (npm run openapi) and committed so reviewers see contract changes in
 * the diff. This fails when the route schemas and the committed file have drifted apart.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { OPENAPI_PATH, renderOpenApiYaml } from '../../scripts/generate-openapi.js';

describe('openapi.yaml', () => {
  it('is what `npm run openapi` generates from the route schemas', async () => {
    const generated = await renderOpenApiYaml();
    let committed: string;
    try {
      committed = readFileSync(OPENAPI_PATH, 'utf8');
    } catch {
      expect.fail('openapi.yaml is missing: run `npm run openapi` and commit the result');
    }
    if (committed !== generated) {
      expect.fail(`openapi.yaml is out of date: run \`npm run openapi\` and commit the result.\n${firstDifference(committed, generated)}`);
    }
  });

  it('is generated the same way twice (deterministic)', async () => {
    expect(await renderOpenApiYaml()).toBe(await renderOpenApiYaml());
  });
});

function firstDifference(committed: string, generated: string): string {
  const a = committed.split('\n');
  const b = generated.split('\n');
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) {
      return `first difference at line ${i + 1}:\n  committed: ${a[i] ?? '(end of file)'}\n  generated: ${b[i] ?? '(end of file)'}`;
    }
  }
  return 'the files differ';
}
