/**
 * The seed of the randomized tests (fast-check properties, schemathesis): fixed in `npm test`,
 * so a run is reproducible and a failure is the same on every machine; fresh under
 * DEEP_TESTS=1 (CI), so deep runs keep exploring, and printed so a failure can be replayed.
 *
 *   TEST_SEED=123 npx vitest run test/fuzz/policy.test.ts      replays seed 123
 *   (with DEEP_TESTS=1 for a deep run's seed: the deep budgets draw more inputs)
 *
 * `TEST_SEED` wins over both modes.
 */

/** The seed `npm test` uses. Any fixed value works; changing it changes what the quick run draws. */
export const FIXED_SEED = 20_261_206;

export interface TestSeed {
  seed: number;
  /** True when the seed was drawn for this run (DEEP_TESTS=1). */
  fresh: boolean;
  /** The command line that replays this run's draws. */
  replay: string;
}

/**
 * The seed for one test file (`file` is shown in the replay command). A fresh seed is printed
 * at once, before any property runs, so even a run that hangs or crashes names it.
 */
export function testSeed(file: string, env: NodeJS.ProcessEnv = process.env): TestSeed {
  const given = env.TEST_SEED;
  let seed: number;
  let fresh = false;
  if (given !== undefined && given !== '') {
    seed = Number(given);
    if (!Number.isSafeInteger(seed)) throw new Error(`TEST_SEED must be an integer, got ${JSON.stringify(given)}`);
  } else if (env.DEEP_TESTS === '1') {
    seed = Math.floor(Math.random() * 2 ** 31);
    fresh = true;
  } else {
    seed = FIXED_SEED;
  }
  // A fresh seed only exists under DEEP_TESTS=1, whose budgets the replay needs too.
  const replay = `${fresh ? 'DEEP_TESTS=1 ' : ''}TEST_SEED=${seed} npx vitest run ${file}`;
  if (fresh) console.log(`[seed] ${file}: fresh seed ${seed} (replay: ${replay})`);
  return { seed, fresh, replay };
}

/** fast-check parameters carrying the file's seed (fast-check itself reports seed and path on failure). */
export function seeded(seed: TestSeed, numRuns: number): { seed: number; numRuns: number } {
  return { seed: seed.seed, numRuns };
}
