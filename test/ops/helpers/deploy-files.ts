/**
 * Reading the deployment files as Docker would: docker-compose.yml (Compose spec, parsed with
 * `yaml`) and .dockerignore (Docker's last-match-wins patterns, a path excluded when it or a
 * parent directory matches). The image's own facts come from dockerfile-facts.ts.
 *
 * Used by the ops tests and by scripts/compose-smoke.sh (through compose-cli.ts) to run the
 * compose service's exact environment without a Docker engine.
 */
import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { parse } from 'yaml';
import { imageEnv, imageVolumes } from './dockerfile-facts.js';
import { REPO_ROOT } from './service-process.js';

// ---- docker-compose.yml ----------------------------------------------------------------------

export interface ComposeService {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  environment?: Record<string, string | number | boolean | null> | string[];
  volumes?: (string | { type: string; source?: string; target: string; read_only?: boolean })[];
  ports?: (string | number)[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean; interval?: string; timeout?: string; retries?: number };
  mem_limit?: string | number;
  stop_grace_period?: string;
  [key: string]: unknown;
}

export interface ComposeFile {
  name?: string;
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

export function loadCompose(path = join(REPO_ROOT, 'docker-compose.yml')): ComposeFile {
  return parse(readFileSync(path, 'utf8'), { uniqueKeys: true }) as ComposeFile;
}

/** A service's `environment`, map or list form, as strings. Throws on a pass-through (no value). */
export function composeEnvironment(service: ComposeService): Record<string, string> {
  const env: Record<string, string> = {};
  const entries: [string, unknown][] = Array.isArray(service.environment)
    ? service.environment.map((item) => {
        const at = item.indexOf('=');
        return at < 0 ? [item, null] : [item.slice(0, at), item.slice(at + 1)];
      })
    : Object.entries(service.environment ?? {});
  for (const [name, value] of entries) {
    if (value === null || value === undefined) throw new Error(`${name} has no value: it would be taken from the host`);
    if (typeof value === 'object') throw new Error(`${name} is not a scalar`);
    env[name] = String(value);
  }
  return env;
}

/** Docker's byte sizes (`512m`, `1g`, `300000k`, plain bytes) in bytes. */
export function dockerBytes(text: string): number {
  const match = /^(\d+)([bkmg]?)$/i.exec(text);
  if (!match) throw new Error(`not a Docker size: ${text}`);
  const unit = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[match[2]!.toLowerCase() as '' | 'b' | 'k' | 'm' | 'g'];
  return Number(match[1]) * unit;
}

/** The envelope service's own health check command (compose `test`, CMD form), without "CMD". */
export function composeHealthcheck(service: ComposeService): string[] {
  const test = service.healthcheck?.test;
  if (!Array.isArray(test) || test[0] !== 'CMD') throw new Error('the envelope service has no CMD health check');
  return test.slice(1);
}

export interface Mount {
  type: 'bind' | 'volume';
  /** bind: repo-relative or absolute host path; volume: the named volume. */
  source: string;
  target: string;
  readOnly: boolean;
}

/** A service's volumes in long form (short syntax `SOURCE:TARGET[:ro]` parsed as Compose does). */
export function composeMounts(service: ComposeService): Mount[] {
  return (service.volumes ?? []).map((volume) => {
    if (typeof volume !== 'string') {
      return {
        type: volume.type === 'bind' ? 'bind' : 'volume',
        source: volume.source ?? '',
        target: volume.target,
        readOnly: volume.read_only === true,
      };
    }
    const [source = '', target = '', mode = ''] = volume.split(':');
    const bind = source.startsWith('.') || source.startsWith('/') || source.startsWith('~');
    return { type: bind ? 'bind' : 'volume', source, target, readOnly: mode.split(',').includes('ro') };
  });
}

/** Where a container path is on this machine: under a bind mount's source, or a named volume's directory. */
export function hostPathOf(containerPath: string, mounts: Mount[], volumeDirs: (mount: Mount) => string): string | undefined {
  const mount = mounts
    .filter((m) => containerPath === m.target || containerPath.startsWith(`${m.target.replace(/\/$/, '')}/`))
    .sort((a, b) => b.target.length - a.target.length)[0];
  if (!mount) return undefined;
  const rest = posix.relative(mount.target, containerPath);
  const base = mount.type === 'bind' ? join(REPO_ROOT, mount.source) : volumeDirs(mount);
  return rest ? join(base, rest) : base;
}

/** Compose duration (`15s`, `1m30s`, `500ms`) in milliseconds. */
export function durationMs(text: string): number {
  const units: Record<string, number> = { us: 0.001, ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let rest = text.trim();
  if (!/^(\d+(\.\d+)?(us|ms|s|m|h))+$/.test(rest)) throw new Error(`not a compose duration: ${text}`);
  while (rest) {
    const match = /^(\d+(?:\.\d+)?)(us|ms|s|m|h)/.exec(rest)!;
    total += Number(match[1]) * units[match[2]!]!;
    rest = rest.slice(match[0].length);
  }
  return total;
}

// ---- .dockerignore ---------------------------------------------------------------------------

export interface IgnoreRule {
  negate: boolean;
  pattern: RegExp;
}

export function loadDockerignore(path = join(REPO_ROOT, '.dockerignore')): IgnoreRule[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const negate = line.startsWith('!');
      const cleaned = posix.normalize((negate ? line.slice(1) : line).trim()).replace(/^\/+/, '').replace(/\/+$/, '');
      return { negate, pattern: globToRegExp(cleaned) };
    });
}

/** Go filepath.Match plus `**`, as Docker's pattern matcher. */
function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i += 1) {
    const char = glob[i]!;
    if (char === '*' && glob[i + 1] === '*') {
      source += '.*';
      i += 1;
      if (glob[i + 1] === '/') i += 1;
    } else if (char === '*') source += '[^/]*';
    else if (char === '?') source += '[^/]';
    else source += char.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

/** True when Docker would leave `path` (repo-relative, posix) out of the build context. */
export function isIgnored(path: string, rules: IgnoreRule[]): boolean {
  const parts = path.split('/');
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const rule of rules) {
    if (candidates.some((candidate) => rule.pattern.test(candidate))) ignored = !rule.negate;
  }
  return ignored;
}

// ---- the compose service, run on this machine ---------------------------------------------

export interface LocalRun {
  /** Replaces the local-kms service's URL (http://local-kms:8080). */
  kmsEndpoint: string;
  /** The port to listen on instead of the container's. */
  port: number;
  /** Named and anonymous volumes become directories under this one. */
  dataDir: string;
}

/**
 * The environment the `envelope` container gets (the image's ENV, then the compose file's
 * `environment`), with exactly three kinds of substitution so it runs here: the local-kms host
 * becomes `kmsEndpoint`; HOST becomes 127.0.0.1 and PORT `port` (nothing here listens beyond
 * loopback); container paths become host paths through the service's mounts (bind mounts to
 * the repo, volumes to `dataDir`), image VOLUMEs included.
 */
export function composeServiceLocalEnv(run: LocalRun, serviceName = 'envelope'): Record<string, string> {
  const compose = loadCompose();
  const service = compose.services[serviceName];
  if (!service) throw new Error(`no service ${serviceName} in docker-compose.yml`);
  const env = { ...imageEnv(), ...composeEnvironment(service) };

  const mounts = composeMounts(service);
  for (const volume of imageVolumes()) {
    if (!mounts.some((m) => m.target === volume)) mounts.push({ type: 'volume', source: '', target: volume, readOnly: false });
  }
  const volumeDir = (mount: Mount) =>
    join(run.dataDir, mount.source || `anonymous${mount.target.replace(/\//g, '-')}`);

  const kmsServices = Object.keys(compose.services).filter((name) => name !== serviceName);
  const local: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (name === 'HOST') local[name] = '127.0.0.1';
    else if (name === 'PORT') local[name] = String(run.port);
    else if (name === 'KMS_ENDPOINT' && kmsServices.some((host) => new URL(value).hostname === host)) local[name] = run.kmsEndpoint;
    else if (value.startsWith('/')) local[name] = hostPathOf(value, mounts, volumeDir) ?? value;
    else local[name] = value;
  }
  return local;
}
