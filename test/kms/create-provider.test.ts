/** createKeyProvider: Config picks the provider; the AWS client carries Config's settings. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { AwsKmsProvider } from '../../src/kms/aws.js';
import { createKeyProvider } from '../../src/kms/create-provider.js';
import { LocalKeyProvider } from '../../src/kms/local.js';
import { serviceUserAgent } from '../../src/kms/user-agent.js';

describe('createKeyProvider', () => {
  it('builds the embedded provider by default, creating the keystore and logging it once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kms-factory-'));
    const logged: string[] = [];
    const logger = { info: (_obj: object, msg?: string) => logged.push(msg ?? ''), warn: () => {} };
    try {
      const config = loadConfig({ LOCAL_KEYSTORE: join(dir, 'ks.json') });
      const provider = createKeyProvider(config, logger);
      expect(provider).toBeInstanceOf(LocalKeyProvider);
      expect(provider.kind).toBe('local');
      expect((await provider.describeKey('alias/default')).state).toBe('Enabled');
      await provider.close();
      await createKeyProvider(config, logger).close();
      expect(logged.filter((msg) => msg.includes('created local keystore'))).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('builds the AWS provider for KMS_PROVIDER=aws', async () => {
    const config = loadConfig({
      KMS_PROVIDER: 'aws',
      AWS_REGION: 'eu-west-2',
      POLICY_FILE: 'policy.yaml',
      KMS_ENDPOINT: 'http://127.0.0.1:1',
    });
    const provider = createKeyProvider(config);
    expect(provider).toBeInstanceOf(AwsKmsProvider);
    expect(provider.kind).toBe('aws');
    await provider.close();
  });
});

describe('serviceUserAgent', () => {
  it('names the package version and the instance, sanitised for a user-agent token', () => {
    const [service, instance] = serviceUserAgent('pod 7/blue');
    expect(service).toEqual(['envelope-service', expect.stringMatching(/^\d+\.\d+\.\d+/)]);
    expect(instance).toEqual(['instance', 'pod-7-blue']);
  });
});
