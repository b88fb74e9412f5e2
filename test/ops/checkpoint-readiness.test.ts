/**
 * What operators see of the audit checkpoints: the /readyz detail (never a readiness failure)
 * and the audit_checkpoint_age_seconds metric, from the dependencies the process builds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { AuditLog } from '../../src/audit/audit-log.js';
import { Checkpointer } from '../../src/audit/checkpointer.js';
import { checkpointHealth, createAuditSigner } from '../../src/checkpoints.js';
import { compose } from '../../src/compose.js';
import { loadConfig } from '../../src/config.js';
import { AwsAuditSigner } from '../../src/audit/signer-aws.js';
import { AUTH } from '../helpers/app.js';
import { LOCAL_KMS_CREDENTIALS, localKmsSettings } from '../helpers/local-kms.js';

let dir: string;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('audit checkpoints in /readyz and /metrics', () => {
  it('local provider: checkpoints are on, /readyz shows them, the age metric is exported', async () => {
    dir = mkdtempSync(join(tmpdir(), 'checkpoint-ready-'));
    const config = loadConfig({
      LOCAL_KEYSTORE: join(dir, 'keystore.json'),
      AUDIT_LOG: join(dir, 'audit.log'),
      LOG_LEVEL: 'silent',
      MAX_EVENT_LOOP_DELAY_MS: '0',
      AUDIT_CHECKPOINT_EVERY_EVENTS: '1',
    });
    const service = await compose(config, { logger: pino({ level: 'silent' }) });
    const app = await buildApp(service);
    cleanups.push(async () => {
      await app.close();
      await service.close(1_000);
    });
    expect(service.checkpointer).toBeDefined();
    await app.ready();
    const encrypted = await request(app.server).post('/v1/encrypt').set(AUTH).send({ plaintext: 'aGk=' });
    expect(encrypted.statusCode).toBe(200);
    await service.checkpointer?.settled();

    const ready = await request(app.server).get('/readyz');
    expect(ready.statusCode).toBe(200);
    const checks = (ready.body as { checks: Record<string, unknown> }).checks;
    expect(checks.auditCheckpoint).toBe('ok');
    expect(typeof checks.auditCheckpointAgeSeconds).toBe('number');
    const metrics = await request(app.server).get('/metrics');
    expect(metrics.text).toMatch(/^audit_checkpoint_age_seconds \d/m);
    expect(metrics.text).toMatch(/^audit_checkpoint_failures_total 0/m);
    // Every event is covered: nothing waits for a signature.
    expect(metrics.text).toMatch(/^audit_checkpoint_unsigned_seconds 0$/m);
  });

  it('aws provider without AUDIT_SIGNING_KEY_ID: checkpoints disabled, said loudly, shown as disabled', () => {
    const config = loadConfig({ KMS_PROVIDER: 'aws', AWS_REGION: 'eu-west-2', POLICY_FILE: 'policy.yaml' });
    const errors: string[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => errors.push(line) });
    expect(createAuditSigner(config, logger)).toBeUndefined();
    expect(errors.join('')).toContain('AUDIT CHECKPOINTS DISABLED');
    expect(checkpointHealth(undefined, 60_000).check(Date.now())).toEqual({ auditCheckpoint: 'disabled' });
    dir = mkdtempSync(join(tmpdir(), 'checkpoint-ready-'));
  });

  it('events waiting more than two intervals for a signature (KMS unreachable) show as delayed', async () => {
    dir = mkdtempSync(join(tmpdir(), 'checkpoint-ready-'));
    const audit = AuditLog.open({ destination: join(dir, 'audit.log') });
    // Nothing listens on port 9 of loopback: every Sign fails with a refused connection.
    const signer = new AwsAuditSigner({
      settings: localKmsSettings('http://127.0.0.1:9', { KMS_MAX_ATTEMPTS: 1 }),
      keyId: 'alias/audit-signing',
      algorithm: 'ECDSA_SHA_256',
      credentials: LOCAL_KMS_CREDENTIALS,
    });
    let now = 1_000_000;
    const checkpointer = new Checkpointer({ audit, signer, instance: 'node-a', everyEvents: 1, intervalMs: 1_000, now: () => now, retryFirstMs: 60_000 });
    cleanups.push(async () => {
      await checkpointer.close(100);
      await audit.close();
    });
    await audit.write({ eventName: 'ListKeys', userIdentity: { type: 'anonymous', principalId: 'anonymous' }, sourceIPAddress: '127.0.0.1', userAgent: null, requestID: 'r', httpStatus: 200, requestParameters: null, responseElements: null, additionalEventData: { kmsRequestIds: [] } });
    checkpointer.noteEvent();
    await checkpointer.settled();
    const health = checkpointHealth(checkpointer, 1_000);
    expect(checkpointer.status().consecutiveFailures).toBeGreaterThan(0);
    expect(health.check(now).auditCheckpoint).toBe('ok');
    now += 2_500;
    expect(health.check(now)).toEqual({ auditCheckpoint: 'delayed' });
  });
});
