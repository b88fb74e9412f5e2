/**
 * The servers as production runs the service: compiled by tsc (`node dist/src/server.js`), not
 * through tsx. tsx compiles with esbuild's keepNames, which adds a `__name()` call (an
 * Object.defineProperty) to every function and closure created: per request, a cost the built
 * service does not pay. The build goes to `.bench-build/` in the repository (ignored), so
 * node_modules and package.json (`"type": "module"`, the version) resolve as they do from
 * `dist/`. Built once per bench process.
 *
 * A second directory, `.bench-build-stripped/`, is the same build with tracing compiled out:
 * its src/telemetry/spans.js is bench/stripped/spans.ts's pass-through (no OpenTelemetry import
 * at all), for the `tracing-stripped` layer variant.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from './constants.js';

export const BUILD_DIR = join(REPO_ROOT, '.bench-build');
/** A sibling of BUILD_DIR, so package.json and node_modules resolve from it as they do from BUILD_DIR. */
export const STRIPPED_BUILD_DIR = join(REPO_ROOT, '.bench-build-stripped');

export type BuildKind = 'standard' | 'stripped';

let built = false;

/** Compiles src/ and bench/servers/ (tsconfig.bench-build.json), and makes the stripped copy, unless done already in this process. */
export function ensureServersBuilt(log: (message: string) => void = () => {}): void {
  if (built) return;
  log('  compiling the servers (tsc -p tsconfig.bench-build.json)');
  execFileSync(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(REPO_ROOT, 'tsconfig.bench-build.json')], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  rmSync(STRIPPED_BUILD_DIR, { recursive: true, force: true });
  cpSync(BUILD_DIR, STRIPPED_BUILD_DIR, { recursive: true });
  copyFileSync(join(BUILD_DIR, 'bench', 'stripped', 'spans.js'), join(STRIPPED_BUILD_DIR, 'src', 'telemetry', 'spans.js'));
  built = true;
}

/** The compiled script of `bench/servers/<script>` (e.g. service.ts), in the standard or the stripped build. */
export function builtServer(script: string, kind: BuildKind = 'standard'): string {
  return join(kind === 'stripped' ? STRIPPED_BUILD_DIR : BUILD_DIR, 'bench', 'servers', script.replace(/\.ts$/, '.js'));
}

/**
 * A module of the standard build (`src/keys/envelope-service.js`, say), compiling it first: what
 * the in-process measurements import, so that they time the code production runs (see above
 * for what tsx adds to every closure). Type it with `typeof import('<its source>')`.
 */
export async function importBuilt<T>(modulePath: string): Promise<T> {
  ensureServersBuilt();
  return (await import(pathToFileURL(join(BUILD_DIR, modulePath)).href)) as T;
}
