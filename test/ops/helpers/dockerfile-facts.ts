/**
 * The few facts about the runtime image that the tests and scripts/compose-smoke.sh rely on,
 * each read with a regex from the Dockerfile's last stage: its ENV, VOLUMEs, USER, CMD and
 * HEALTHCHECK command. Not a Dockerfile parser: the file's syntax and practice are hadolint's
 * job (test/ops/docker.test.ts runs it).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './service-process.js';

export const DOCKERFILE_PATH = join(REPO_ROOT, 'Dockerfile');

/** The runtime stage: one instruction per line (continuations joined, comments dropped). */
function runtimeStage(path = DOCKERFILE_PATH): string[] {
  const text = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => !line.trim().startsWith('#'))
    .join('\n')
    .replace(/\\\n\s*/g, ' ');
  const lines = text.split('\n').map((line) => line.trim());
  const from = lines.findLastIndex((line) => /^FROM\s/i.test(line));
  return lines.slice(from + 1).filter(Boolean);
}

/** Arguments of the stage's `keyword` instructions, in order. */
function argumentsOf(keyword: string, path?: string): string[] {
  const pattern = new RegExp(`^${keyword}\\s+(.*)$`, 'i');
  return runtimeStage(path).flatMap((line) => pattern.exec(line)?.[1] ?? []);
}

/** The image's ENV (`ENV A=1 B="two"`): what `docker run` without -e gives the service. */
export function imageEnv(path?: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const args of argumentsOf('ENV', path)) {
    for (const match of args.matchAll(/(\w+)=("([^"]*)"|\S+)/g)) env[match[1]!] = match[3] ?? match[2]!;
  }
  return env;
}

export function imageVolumes(path?: string): string[] {
  return argumentsOf('VOLUME', path).flatMap((args) => JSON.parse(args) as string[]);
}

/** The effective USER (root when none is set). */
export function imageUser(path?: string): string {
  return argumentsOf('USER', path).at(-1) ?? 'root';
}

/** The effective CMD, exec form. */
export function imageCmd(path?: string): string[] | undefined {
  const args = argumentsOf('CMD', path).at(-1);
  return args === undefined ? undefined : (JSON.parse(args) as string[]);
}

/** The HEALTHCHECK's options and its exec-form command. */
export function imageHealthcheck(path?: string): { options: string; command: string[] } | undefined {
  const args = argumentsOf('HEALTHCHECK', path).at(-1);
  const match = args === undefined ? null : /^(.*?)\bCMD\s+(\[.*\])$/.exec(args);
  return match ? { options: match[1]!.trim(), command: JSON.parse(match[2]!) as string[] } : undefined;
}

/** Sources of the COPY instructions that read the build context (not --from another stage), in every stage. */
export function contextCopySources(path = DOCKERFILE_PATH): string[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .flatMap((line) => /^COPY\s+(?!.*--from=)(.*)$/i.exec(line.trim())?.[1] ?? [])
    .flatMap((args) => args.split(/\s+/).filter((word) => !word.startsWith('--')).slice(0, -1));
}
