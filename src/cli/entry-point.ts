/**
 * Whether the module at `moduleUrl` is the script node was started with (`node file.js`,
 * `tsx file.ts`, through a symlink or not): the CLIs run their main() only then, and stay
 * importable by tests.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export function isEntryPoint(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false;
  }
}
