/**
 * Signed checkpoints through @aws-sdk/client-kms against a private local-kms seeded with
 * ECC_NIST_P256 SIGN_VERIFY keys (its own instance: the shared one may run an older seed),
 * behind the fault proxy to take KMS away.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { Checkpointer } from '../../src/audit/checkpointer.js';
import { AwsAuditSigner } from '../../src/audit/signer-aws.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { findLocalKmsBinary, LOCAL_KMS_CREDENTIALS, LOCAL_KMS_REGION, localKmsSettings, startLocalKms, type LocalKmsInstance } from '../helpers/local-kms.js';
import { isCheckpoint, runVerify, writeSignedLog } from './checkpoint-helpers.js';
import { readLines, sampleInput, tempDir } from './helpers.js';

const canRun = findLocalKmsBinary() !== undefined || process.env.CI === 'true';

describe.skipIf(!canRun)('signed checkpoints with KMS Sign (local-kms)', () => {
  let kms: LocalKmsInstance;
  let proxy: FaultProxy;
  const signer = (keyId: string, endpoint: string) =>
    new AwsAuditSigner({
      settings: localKmsSettings(endpoint, { KMS_MAX_ATTEMPTS: 1, KMS_TIMEOUT_MS: 1_000 }),
      keyId,
      algorithm: 'ECDSA_SHA_256',
      credentials: LOCAL_KMS_CREDENTIALS,
    });

  /** audit:verify --kms-key-id reads the SDK's usual environment. */
  const withKmsEnv = async <T>(run: () => Promise<T>): Promise<T> => {
    const saved = { ...process.env };
    Object.assign(process.env, {
      KMS_ENDPOINT: kms.endpoint,
      AWS_REGION: LOCAL_KMS_REGION,
      AWS_ACCESS_KEY_ID: LOCAL_KMS_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_KMS_CREDENTIALS.secretAccessKey,
    });
    try {
      return await run();
    } finally {
      for (const name of ['KMS_ENDPOINT', 'AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
        if (saved[name] === undefined) delete process.env[name];
        else process.env[name] = saved[name];
      }
    }
  };

  beforeAll(async () => {
    kms = await startLocalKms();
    proxy = await startFaultProxy(kms.endpoint);
  });
  afterAll(async () => {
    await proxy?.close();
    await kms?.dispose();
  });

  it('signs with the seeded ECC key; audit:verify fetches the public key once with GetPublicKey', async () => {
    const dir = tempDir();
    const path = join(dir, 'audit.log');
    const audit = signer('alias/audit-signing', kms.endpoint);
    await writeSignedLog(path, { signer: audit, events: 12, everyEvents: 5 });
    const checkpoint = JSON.parse(readLines(path).find(isCheckpoint) as string) as { serviceEventDetails: { keyArn: string } };
    expect(checkpoint.serviceEventDetails.keyArn).toMatch(/:key\/0d7e4a8c-5b1f-4c2e-9a3d-6f8b2c1e7a90$/);

    const result = await withKmsEnv(() => runVerify(['--kms-key-id=alias/audit-signing', path]));
    expect(result.err).toBe('');
    expect(result.out).toContain('unsigned tail: none');

    // Signed by another instance's key: refused at its first checkpoint.
    const other = join(dir, 'other.log');
    await writeSignedLog(other, { signer: signer('alias/audit-signing-other', kms.endpoint), events: 6, everyEvents: 5 });
    const refused = await withKmsEnv(() => runVerify(['--kms-key-id=alias/audit-signing', other]));
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('FAIL: sequence 5: checkpoint at sequence 5');
    expect(refused.err).toContain('signed with another key');
  });

  it('a KMS outage delays checkpoints without failing a request; the next checkpoint covers the gap', async () => {
    const dir = tempDir();
    const path = join(dir, 'audit.log');
    let checkpointer: Checkpointer | undefined;
    const audit = AuditLog.open({ destination: path, onWritten: () => checkpointer?.noteEvent() });
    checkpointer = new Checkpointer({
      audit,
      signer: signer('alias/audit-signing', proxy.endpoint),
      instance: 'node-a',
      everyEvents: 3,
      intervalMs: 3_600_000,
      retryFirstMs: 100,
      retryMaxMs: 200,
    });

    await proxy.set('refuse');
    for (let index = 0; index < 10; index += 1) {
      await expect(audit.write(sampleInput({ requestID: `during-outage-${index}` }))).resolves.toBeUndefined();
    }
    await checkpointer.settled();
    expect(readLines(path).filter(isCheckpoint)).toEqual([]);
    expect(checkpointer.status().consecutiveFailures).toBeGreaterThan(0);
    expect(checkpointer.status().unsignedSince).not.toBeNull();

    await proxy.set('pass');
    const deadline = Date.now() + 10_000;
    while (readLines(path).filter(isCheckpoint).length === 0 && Date.now() < deadline) await new Promise((done) => setTimeout(done, 50));
    const first = JSON.parse(readLines(path).find(isCheckpoint) as string) as { serviceEventDetails: { statement: { firstSequence: number; lastSequence: number } } };
    // One checkpoint vouches for every event written during the outage.
    expect(first.serviceEventDetails.statement.firstSequence).toBe(0);
    expect(first.serviceEventDetails.statement.lastSequence).toBeGreaterThanOrEqual(9);

    await checkpointer.close(5_000);
    await audit.close();
    const result = await withKmsEnv(() => runVerify(['--kms-key-id=alias/audit-signing', path]));
    expect(result.err).toBe('');
    expect(result.out).toContain('unsigned tail: none');
  });
});
