/** Values shared by the benchmark runner and its server children. */
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BENCH_POLICY_FILE = fileURLToPath(new URL('../fixtures/policy.yaml', import.meta.url));
/** The API key in bench/fixtures/policy.yaml (published: it grants nothing outside the bench). */
export const BENCH_TOKEN = 'bench-api-key-not-a-secret';
/** The noisy-neighbour case's policy and its two API keys (published: bench-only grants). */
export const NEIGHBOUR_POLICY_FILE = fileURLToPath(new URL('../fixtures/neighbour-policy.yaml', import.meta.url));
export const NEIGHBOUR_A_TOKEN = 'bench-neighbour-a-not-a-secret';
export const NEIGHBOUR_B_TOKEN = 'bench-neighbour-b-not-a-secret';
/** The dev-mode token used by the "policy off" layer. */
export const BENCH_DEV_TOKEN = 'bench-dev-token';
/** The context every benchmarked request carries (the policy requires tenant and purpose). */
export const BENCH_CONTEXT = { tenant: 'bench', purpose: 'bench' } as const;
/** Fixed key of the bare AES baseline server (b); a benchmark constant, not a secret. */
export const BARE_AES_KEY_HEX = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
export const KiB = 1024;
export const MiB = 1024 * KiB;
/** The service's default data-key cache limits (src/config.ts), given to both sides of the in-process comparisons. */
export const DEFAULT_CACHE_LIMITS = { maxAgeMs: 300_000, maxMessages: 10_000, maxBytes: 1024 * MiB, capacity: 1_000 };
