/**
 * The Dockerfile and .dockerignore, checked without a Docker engine: what each stage does, what
 * the runtime image holds and runs, that its ENV is a valid configuration, that the build
 * context lets in exactly what the COPY lines need and keeps out what must never reach an
 * image, and that the HEALTHCHECK command really works against the real service.
 * (hadolint, where installed, lints the same file: scripts/compose-smoke.sh runs it.)
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigSchema, loadConfig } from '../../src/config.js';
import {
  execForm,
  instructions,
  isIgnored,
  loadDockerfile,
  loadDockerignore,
  stageEnv,
  type Stage,
} from './helpers/deploy-files.js';
import { REPO_ROOT, startService, tempDir, type ServiceProcess } from './helpers/service-process.js';

const dockerfile = loadDockerfile();
const runtime = dockerfile.stages.at(-1)!;
const runs = (stage: Stage) => instructions(stage, 'RUN').map((i) => i.args).join('\n');
const packageJson = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };

describe('Dockerfile', () => {
  it('is multi-stage on a current Node LTS slim image', () => {
    expect(dockerfile.stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of dockerfile.stages) expect(stage.from).toMatch(/^node:(22|24)[.\d]*-(bookworm|trixie)-slim(@sha256:[0-9a-f]{64})?$/);
  });

  it('builds in a stage with dev dependencies, and ships only production dependencies', () => {
    const build = dockerfile.stages.find((stage) => /npm run build/.test(runs(stage)));
    expect(build, 'no stage runs npm run build').toBeDefined();
    expect(runs(build!)).toMatch(/npm ci(?![^\n]*--omit=dev)/);
    // The runtime's node_modules come from `npm ci --omit=dev` (here or in a stage it copies from).
    const copies = instructions(runtime, 'COPY').map((i) => i.args);
    const modulesFrom = copies.map((args) => /--from=(\S+)\s+\S*node_modules/.exec(args)?.[1]).find(Boolean);
    const source = modulesFrom ? dockerfile.stages.find((stage) => stage.name === modulesFrom) : runtime;
    expect(runs(source!)).toMatch(/npm ci[^\n]*--omit=dev/);
    expect(modulesFrom).not.toBe(build!.name);
    // dist from the build stage; no sources, tests or whole-context copies in the runtime.
    expect(copies.some((args) => args.includes(`--from=${build!.name}`) && /\bdist\b/.test(args))).toBe(true);
    expect(copies.every((args) => !/(^|\s)\.\s/.test(args) && !/\b(src|test|bench)\b/.test(args.replace(/--from=\S+/, '')))).toBe(true);
  });

  it('runs node on the built entry point as a non-root numeric user', () => {
    expect(execForm(instructions(runtime, 'CMD').at(-1)!.args)).toEqual(['node', 'dist/src/server.js']);
    // The same file `npm start` runs, which tsc emits there (outDir dist, rootDir .).
    expect(packageJson.scripts.start).toBe('node dist/src/server.js');
    const tsconfig = JSON.parse(readFileSync(join(REPO_ROOT, 'tsconfig.json'), 'utf8')) as { compilerOptions: Record<string, string> };
    expect([tsconfig.compilerOptions.outDir, tsconfig.compilerOptions.rootDir]).toEqual(['dist', '.']);
    const user = instructions(runtime, 'USER').at(-1)?.args ?? 'root';
    expect(user).toMatch(/^[1-9]\d*(:\d+)?$/);
    expect(instructions(runtime, 'ENTRYPOINT')).toHaveLength(0);
    expect(instructions(runtime, 'STOPSIGNAL').at(-1)?.args ?? 'SIGTERM').toBe('SIGTERM');
  });

  it('never starts open: its ENV alone (no POLICY_FILE) is refused with what to set', () => {
    const env = stageEnv(runtime);
    expect(env).toMatchObject({ HOST: '0.0.0.0', NODE_ENV: 'production' });
    expect(() => loadConfig(env)).toThrow(/dev mode \(no POLICY_FILE\) is refused with NODE_ENV=production: set POLICY_FILE/);
    // Not even with NODE_ENV overridden: dev mode stays on loopback.
    expect(() => loadConfig({ ...env, NODE_ENV: 'development' })).toThrow(/set POLICY_FILE .*or HOST=127\.0\.0\.1/);
  });

  it('sets a valid configuration once given a POLICY_FILE: HOST=0.0.0.0, PORT as exposed, state on volumes, no secrets', () => {
    const env = stageEnv(runtime);
    for (const name of Object.keys(env)) {
      expect(name in ConfigSchema.properties, `ENV ${name} is not a configuration name`).toBe(true);
    }
    const config = loadConfig({ ...env, POLICY_FILE: '/etc/envelope/policy.yaml' });
    expect(config.HOST).toBe('0.0.0.0');
    expect(instructions(runtime, 'EXPOSE').map((i) => i.args)).toEqual([String(config.PORT)]);
    const volumes = instructions(runtime, 'VOLUME').flatMap((i) => execForm(i.args));
    expect(volumes.some((volume) => config.LOCAL_KEYSTORE.startsWith(`${volume}/`))).toBe(true);
    expect(volumes.some((volume) => config.AUDIT_LOG.startsWith(`${volume}/`))).toBe(true);
    // Nothing secret or deployment-specific is baked in.
    for (const name of ['DEV_TOKEN', 'POLICY_FILE', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'KMS_ENDPOINT']) {
      expect(env).not.toHaveProperty(name);
    }
    const every = (keyword: string) => dockerfile.stages.flatMap((stage) => instructions(stage, keyword).map((i) => i.args));
    for (const copy of every('COPY')) expect(copy).not.toMatch(/\.data|keystore|audit\.log|\.env|policy/);
    for (const arg of [...every('ARG'), ...every('ENV')]) expect(arg).not.toMatch(/TOKEN|SECRET|PASSWORD|ACCESS_KEY/i);
    expect(Object.keys(dockerfile.args).join(' ')).not.toMatch(/TOKEN|SECRET|PASSWORD|ACCESS_KEY/i);
  });

  it('checks liveness with node itself, on /healthz', () => {
    const [healthcheck] = instructions(runtime, 'HEALTHCHECK');
    expect(healthcheck).toBeDefined();
    const command = execForm(healthcheck!.args.slice(healthcheck!.args.indexOf('CMD')));
    expect(command.slice(0, 2)).toEqual(['node', '-e']);
    expect(command[2]).toContain('/healthz');
    expect(healthcheck!.args).toMatch(/--timeout=\d+s/);
  });
});

describe('.dockerignore', () => {
  const rules = loadDockerignore();

  it('lets in every file the Dockerfile COPYs from the build context', () => {
    const sources = dockerfile.stages
      .flatMap((stage) => instructions(stage, 'COPY'))
      .filter((i) => !i.args.includes('--from='))
      .flatMap((i) => i.args.split(/\s+/).filter((word) => !word.startsWith('--')).slice(0, -1));
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) expect(isIgnored(source, rules), `${source} is excluded`).toBe(false);
    expect(isIgnored('src/server.ts', rules)).toBe(false);
    expect(isIgnored('src/audit/verify-cli.ts', rules)).toBe(false);
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
  const command = (() => {
    const [healthcheck] = instructions(runtime, 'HEALTHCHECK');
    return execForm(healthcheck!.args.slice(healthcheck!.args.indexOf('CMD')));
  })();
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
    expect(probe(service.port)).toBe(0);
    expect((await service.stop()).code).toBe(0);
    expect(probe(service.port)).toBe(1);
  });
});
