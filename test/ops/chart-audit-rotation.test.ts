/**
 * The Helm chart's audit-rotation sidecar (deploy/helm/envelope-service/files/rotate-audit.mjs),
 * run as the chart runs it (node, the script, its environment) beside the real service process
 * and without any signal to it: the sidecar renames the live file at its size limit, the service
 * follows its path and continues the chain in the new file, and `audit:verify --sort` accepts the
 * rotated set plus the live file as one log, every request's event in it. Pruning is off unless
 * PRUNE_ROTATED=true (the chart's default is off): then it removes only rotated files beyond
 * the newest KEEP_ROTATED that are older than PRUNE_MIN_AGE_SECONDS.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { send, sendRetryingOverload } from './helpers/http.js';
import { REPO_ROOT, childEnv, sleep, startService, tempDir, type ServiceProcess } from './helpers/service-process.js';

const SCRIPT = join(REPO_ROOT, 'deploy/helm/envelope-service/files/rotate-audit.mjs');
const AUTH = { authorization: 'Bearer dev-token' };

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

function startRotator(env: Record<string, string>): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, [SCRIPT], { env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  cleanup.push(
    () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null || child.signalCode !== null) return done();
        child.once('exit', () => done());
        child.kill('SIGTERM');
      }),
  );
  return { child, output: () => output };
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe('the chart audit-rotation sidecar', { timeout: 120_000 }, () => {
  it('rotates the live audit log by size, without signalling the service, into a set audit:verify accepts as one chain', async () => {
    const dir = tempDir();
    cleanup.push(() => dir.remove());
    const auditLog = join(dir.path, 'audit-envelope-7d9f-x2x7q.log');
    let service: ServiceProcess | undefined = await startService({
      LOCAL_KEYSTORE: join(dir.path, 'keystore.json'),
      AUDIT_LOG: auditLog,
      READINESS_CACHE_MS: '0',
    });
    cleanup.push(async () => {
      await service?.stop();
    });
    const rotator = startRotator({ AUDIT_LOG: auditLog, ROTATE_BYTES: '8192', KEEP_ROTATED: '100', CHECK_INTERVAL_SECONDS: '0.05' });

    const rotated = () => readdirSync(dir.path).filter((name) => /^audit-envelope-7d9f-x2x7q\.log-\d{14}$/.test(name));
    let requests = 0;
    // Rotation names have one-second resolution: three rotations take at least two seconds.
    while (rotated().length < 3) {
      // A busy machine may shed a request (503 Overloaded): retried, as a client would.
      const result = await sendRetryingOverload(`${service.baseUrl}/v1/encrypt`, {
        headers: AUTH,
        body: JSON.stringify({ plaintext: Buffer.from(`record ${requests}`).toString('base64'), context: { tenant: 'a' } }),
      });
      expect(result.kind === 'response' && `${result.status} ${result.body}`).toMatch(/^200 /);
      requests += 1;
      if (requests > 5_000) throw new Error(`no third rotation after ${requests} requests:\n${rotator.output()}`);
    }
    // The readiness check also follows the path: the live file exists again after the last rename.
    await send(`${service.baseUrl}/readyz`);
    await service.stop();
    service = undefined;

    expect(rotator.output()).toContain('"msg":"audit log rotated"');
    const files = readdirSync(dir.path)
      .filter((name) => name.startsWith('audit-envelope-7d9f-x2x7q.log'))
      .map((name) => join(dir.path, name));
    const verified = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/audit-verify.ts', '--sort', ...files], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(verified.stderr).toBe('');
    expect(verified.status).toBe(0);
    expect(verified.stdout).toMatch(/^OK: \d+ events, chain intact/);

    // Every served request's event is in the set, once.
    const encrypts = files
      .flatMap((file) => readFileSync(file, 'utf8').split('\n').filter(Boolean))
      .map((line) => JSON.parse(line) as { eventName?: string; httpStatus?: number })
      .filter((event) => event.eventName === 'Encrypt' && event.httpStatus === 200);
    expect(encrypts).toHaveLength(requests);
  });

  /** Five old rotated files of audit-p.log (the oldest just written), the live file, another pod's file. */
  function rotatedSet() {
    const dir = tempDir();
    cleanup.push(() => dir.remove());
    const live = join(dir.path, 'audit-p.log');
    const hourAgo = Date.now() / 1000 - 3600;
    const names = ['20261201000000', '20261202000000', '20261203000000', '20261204000000', '20261205000000'].map((s) => `audit-p.log-${s}`);
    for (const name of names) {
      writeFileSync(join(dir.path, name), 'x\n');
      utimesSync(join(dir.path, name), hourAgo, hourAgo);
    }
    // The oldest beyond the kept two, but written just now (the shipper may still be reading it).
    utimesSync(join(dir.path, names[0]!), Date.now() / 1000, Date.now() / 1000);
    writeFileSync(live, 'live\n');
    writeFileSync(join(dir.path, 'audit-other.log-20261201000000'), 'another pod\n');
    return { dir, live, names, all: readdirSync(dir.path).sort() };
  }

  it('never deletes a rotated file unless PRUNE_ROTATED=true', async () => {
    const { dir, live, all } = rotatedSet();
    for (const prune of [undefined, 'false']) {
      const rotator = startRotator({ AUDIT_LOG: live, ROTATE_BYTES: '1000000', KEEP_ROTATED: '0', PRUNE_MIN_AGE_SECONDS: '0', CHECK_INTERVAL_SECONDS: '0.05', ...(prune && { PRUNE_ROTATED: prune }) });
      await waitFor(() => rotator.output().includes('"msg":"audit rotation started"'), 'the sidecar started');
      expect(rotator.output()).toContain('"prune":false');
      await sleep(500); // many checks
      expect(rotator.output()).not.toContain('rotated audit log removed');
      expect(readdirSync(dir.path).sort()).toEqual(all);
      rotator.child.kill('SIGTERM');
    }
    // A value that is not a boolean stops the sidecar instead of guessing.
    const wrong = startRotator({ AUDIT_LOG: live, ROTATE_BYTES: '1000000', PRUNE_ROTATED: 'yes' });
    await waitFor(() => wrong.child.exitCode !== null, 'the sidecar refusing PRUNE_ROTATED=yes');
    expect(wrong.child.exitCode).not.toBe(0);
    expect(wrong.output()).toContain('PRUNE_ROTATED must be true or false');
  });

  it('with PRUNE_ROTATED=true, prunes only rotated files beyond the newest KEEP_ROTATED that are older than PRUNE_MIN_AGE_SECONDS', async () => {
    const { dir, live, names } = rotatedSet();
    const rotator = startRotator({ AUDIT_LOG: live, ROTATE_BYTES: '1000000', PRUNE_ROTATED: 'true', KEEP_ROTATED: '2', PRUNE_MIN_AGE_SECONDS: '600', CHECK_INTERVAL_SECONDS: '0.05' });
    await waitFor(() => (rotator.output().match(/rotated audit log removed/g) ?? []).length === 2, 'two removals');
    await sleep(300); // a few more checks: nothing else goes
    expect(readdirSync(dir.path).sort()).toEqual(['audit-other.log-20261201000000', 'audit-p.log', names[0]!, names[3]!, names[4]!].sort());
    expect(statSync(live).size).toBe(5);
  });
});
