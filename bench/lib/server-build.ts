/**
 * The servers as production runs the service: compiled by tsc (`node dist/src/server.js`), not
 * through tsx. tsx compiles with esbuild's keepNames, which adds a `__name()` call (an
 * Object.defineProperty) to every function and closure created: per request, a cost the built
 * service does not pay. The build goes to `.bench-build/` in the repository (ignored), so
 * node_modules and package.json (`"type": "module"`, the version) resolve as they do from
 * `dist/`. Built once per bench process.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from './constants.js';

export const BUILD_DIR = join(REPO_ROOT, '.bench-build');

let built = false;

/** Compiles src/ and bench/servers/ (tsconfig.bench-build.json) unless done already in this process. */
export function ensureServersBuilt(log: (message: string) => void = () => {}): void {
  if (built) return;
  log('  compiling the servers (tsc -p tsconfig.bench-build.json)');
  execFileSync(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(REPO_ROOT, 'tsconfig.bench-build.json')], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  built = true;
}

/** The compiled script of `bench/servers/<script>` (e.g. service.ts). */
export function builtServer(script: string): string {
  return join(BUILD_DIR, 'bench', 'servers', script.replace(/\.ts$/, '.js'));
}
