/**
 * Audit log rotation against the real process, as logrotate does it: rename the file, then
 * SIGUSR2 (postrotate). The process keeps running, the new file starts at once by continuing
 * the chain, /readyz never vouches for a file that is gone, and `npm run audit:verify` checks
 * the rotated set as one log.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { json, send } from './helpers/http.js';
import { REPO_ROOT, sleep, startService, tempDir, type ServiceProcess } from './helpers/service-process.js';

const AUTH = { authorization: 'Bearer dev-token' };

let service: ServiceProcess;
let dir: ReturnType<typeof tempDir>;
let auditLog: string;

beforeAll(async () => {
  dir = tempDir();
  auditLog = join(dir.path, 'audit.log');
  service = await startService({
    LOCAL_KEYSTORE: join(dir.path, 'keystore.json'),
    AUDIT_LOG: auditLog,
    LOG_LEVEL: 'info',
    READINESS_CACHE_MS: '0',
  });
});
afterAll(async () => {
  await service?.stop();
  dir?.remove();
});

async function encrypt(): Promise<number> {
  const result = await send(`${service.baseUrl}/v1/encrypt`, {
    headers: AUTH,
    body: JSON.stringify({ plaintext: Buffer.from('rotate').toString('base64') }),
  });
  if (result.kind !== 'response') throw new Error(result.message);
  return result.status;
}

async function readiness(): Promise<{ status: number; audit: unknown }> {
  const result = await send(`${service.baseUrl}/readyz`);
  if (result.kind !== 'response') throw new Error(result.message);
  return { status: result.status, audit: json<{ checks?: { audit?: unknown } }>(result).checks?.audit };
}

function allEvents(path: string): Record<string, unknown>[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** The events, without the signed checkpoints (one follows each rotation, written soon after). */
function events(path: string): Record<string, unknown>[] {
  return allEvents(path).filter((event) => event.eventName !== 'AuditCheckpoint');
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function verify(...files: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/audit-verify.ts', ...files], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('audit log rotation (logrotate: rename, then SIGUSR2)', { timeout: 60_000 }, () => {
  it('SIGUSR2 reopens the path without stopping the process; the new file continues the chain', async () => {
    expect(await encrypt()).toBe(200);
    renameSync(auditLog, `${auditLog}.1`);
    service.signal('SIGUSR2');
    // Another process writes it: wait for the line, not just the file.
    await waitFor(() => existsSync(auditLog) && readFileSync(auditLog, 'utf8').endsWith('\n'), 'the new audit file');
    expect(events(auditLog)).toMatchObject([
      { eventName: 'AuditLogReopened', serviceEventDetails: { reason: 'renamed', detectedBy: 'signal' } },
    ]);
    await waitFor(() => service.logRecords().some((record) => record.msg === 'audit log reopened after rotation'), 'the log line');
    expect(service.child.exitCode).toBeNull();
    // The rotation checkpoint, in the new file, signs the rotated file's lines.
    await waitFor(() => allEvents(auditLog).some((event) => event.eventName === 'AuditCheckpoint'), 'the rotation checkpoint');

    expect(await encrypt()).toBe(200);
    expect(allEvents(auditLog).map((event) => event.eventName)).toEqual(['AuditLogReopened', 'AuditCheckpoint', 'Encrypt']);
    expect(events(`${auditLog}.1`).map((event) => event.eventName)).toEqual(['Encrypt']);

    const checked = verify(`${auditLog}.1`, auditLog);
    expect(checked.status, checked.stderr).toBe(0);
    expect(checked.stdout).toMatch(/^OK: 4 events, chain intact/);
  });

  it('/readyz follows a deleted file, and is not ready while the path cannot be reopened', async () => {
    unlinkSync(auditLog);
    expect(await readiness()).toEqual({ status: 200, audit: 'ok' });
    expect(events(auditLog)).toMatchObject([{ eventName: 'AuditLogReopened', serviceEventDetails: { reason: 'deleted', detectedBy: 'readiness' } }]);
    // The reopening's checkpoint is signed off the request path and written a moment later: let
    // it land first, or that write could find the renamed path and reopen it before mkdir.
    await waitFor(() => allEvents(auditLog).some((event) => event.eventName === 'AuditCheckpoint'), 'the rotation checkpoint');

    renameSync(auditLog, `${auditLog}.0`);
    mkdirSync(auditLog); // the path cannot hold the log now
    expect(await readiness()).toEqual({ status: 503, audit: 'unavailable' });
    expect(await encrypt()).toBe(503);
    rmdirSync(auditLog);
    await sleep(1100); // the recovery probe runs at most once a second
    expect(await readiness()).toEqual({ status: 200, audit: 'ok' });
    expect(await encrypt()).toBe(200);
    // The set verifies from where the deleted file ended; with the deleted file's gap, it fails.
    const checked = verify('--after=any', `${auditLog}.0`, auditLog);
    expect(checked.status, checked.stderr).toBe(0);
    const withGap = verify(`${auditLog}.1`, `${auditLog}.0`, auditLog);
    expect(withGap.status).toBe(1);
    expect(withGap.stderr).toMatch(/^FAIL: gap between .*audit\.log\.1 \(last sequence 0\) and .*audit\.log\.0 \(first sequence 4\): 3 event\(s\) missing/);
  });
});
