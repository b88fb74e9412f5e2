/**
 * Runs the one KeyProvider contract against both providers:
 * - LocalKeyProvider on a fresh keystore in a temp directory;
 * - AwsKmsProvider -> @aws-sdk/client-kms -> HTTP -> local-kms (the shared instance from
 *   global setup), on the seeded aliases. Skipped only outside CI when local-kms is missing.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AwsKmsProvider } from '../../src/kms/aws.js';
import { LocalKeyProvider } from '../../src/kms/local.js';
import {
  LOCAL_KMS_CREDENTIALS,
  LOCAL_KMS_SEED,
  localKmsEndpoint,
  localKmsSettings,
  skipWithoutLocalKms,
} from '../helpers/local-kms.js';
import { registerProviderContract } from './provider-contract.js';

registerProviderContract('LocalKeyProvider (embedded keystore)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kms-contract-'));
  const provider = new LocalKeyProvider({ path: join(dir, 'keystore.json') });
  const keyA = await provider.createKey();
  const keyB = await provider.createKey();
  await provider.createAlias('alias/tenant-a', keyA.keyId);
  await provider.createAlias('alias/tenant-b', keyB.keyId);
  const defaultArn = (await provider.describeKey('alias/default')).keyArn;
  return {
    provider,
    keyA: { alias: 'alias/tenant-a', arn: keyA.keyArn, keyId: keyA.keyId },
    keyB: { alias: 'alias/tenant-b', arn: keyB.keyArn, keyId: keyB.keyId },
    expectedAliases: { 'alias/default': defaultArn, 'alias/tenant-a': keyA.keyArn, 'alias/tenant-b': keyB.keyArn },
    unknownKeyId: randomUUID(),
    async teardown() {
      await provider.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

registerProviderContract(
  'AwsKmsProvider -> local-kms over HTTP',
  async () => {
    const endpoint = localKmsEndpoint();
    if (!endpoint) throw new Error('LOCAL_KMS_ENDPOINT is not set (global setup should have failed in CI)');
    const provider = new AwsKmsProvider({ settings: localKmsSettings(endpoint), credentials: LOCAL_KMS_CREDENTIALS });
    const { default: defaultKey, tenantA, tenantB } = LOCAL_KMS_SEED.keys;
    return {
      provider,
      keyA: { alias: 'alias/tenant-a', arn: tenantA.keyArn, keyId: tenantA.keyId },
      keyB: { alias: 'alias/tenant-b', arn: tenantB.keyArn, keyId: tenantB.keyId },
      expectedAliases: {
        'alias/default': defaultKey.keyArn,
        'alias/tenant-a': tenantA.keyArn,
        'alias/tenant-b': tenantB.keyArn,
      },
      unknownKeyId: randomUUID(),
      async teardown() {
        await provider.close();
      },
    };
  },
  { skip: skipWithoutLocalKms() },
);
