/**
 * AwsKmsProvider against local-kms, beyond the shared contract: key states changed through
 * the KMS API itself, KMS going away and coming back, and unreachable endpoints.
 * Keys whose state a test changes are created by that test (CreateKey), so tests never
 * interfere with each other or with the seeded keys other suites use.
 */
import { createServer, type Server } from 'node:net';
import {
  CreateKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  KMSClient,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsKmsProvider } from '../../src/kms/aws.js';
import {
  LOCAL_KMS_CREDENTIALS,
  LOCAL_KMS_REGION,
  LOCAL_KMS_SEED,
  localKmsEndpoint,
  localKmsSettings,
  skipWithoutLocalKms,
  startLocalKms,
  type LocalKmsInstance,
} from '../helpers/local-kms.js';
import { expectKmsError } from './kms-assert.js';

const CONTEXT = { tenant: 'acme' };

describe.skipIf(skipWithoutLocalKms())('AwsKmsProvider against local-kms', () => {
  let admin: KMSClient;
  let provider: AwsKmsProvider;

  beforeAll(() => {
    const endpoint = localKmsEndpoint() ?? '';
    admin = new KMSClient({ endpoint, region: LOCAL_KMS_REGION, credentials: LOCAL_KMS_CREDENTIALS });
    provider = new AwsKmsProvider({ settings: localKmsSettings(endpoint), credentials: LOCAL_KMS_CREDENTIALS });
  });
  afterAll(async () => {
    await provider.close();
    admin.destroy();
  });

  async function createKey(): Promise<string> {
    const created = await admin.send(new CreateKeyCommand({ Description: 'envelope-service aws.test.ts' }));
    const arn = created.KeyMetadata?.Arn;
    if (!arn) throw new Error('CreateKey returned no ARN');
    return arn;
  }

  it('DisableKey -> KeyDisabled for generate and decrypt; EnableKey -> usable again', async () => {
    const keyArn = await createKey();
    const generated = await provider.generateDataKey(keyArn, CONTEXT);

    await admin.send(new DisableKeyCommand({ KeyId: keyArn }));
    expect(await provider.describeKey(keyArn)).toMatchObject({ keyArn, enabled: false, state: 'Disabled' });
    await expectKmsError(provider.generateDataKey(keyArn, CONTEXT), 'KeyDisabled');
    await expectKmsError(provider.decryptDataKey(generated.wrappedKey, keyArn, CONTEXT), 'KeyDisabled');

    await admin.send(new EnableKeyCommand({ KeyId: keyArn }));
    const unwrapped = await provider.decryptDataKey(generated.wrappedKey, keyArn, CONTEXT);
    expect(unwrapped.plaintextKey.equals(generated.plaintextKey)).toBe(true);
  });

  it('ScheduleKeyDeletion -> KeyUnavailableState', async () => {
    const keyArn = await createKey();
    const generated = await provider.generateDataKey(keyArn, CONTEXT);
    await admin.send(new ScheduleKeyDeletionCommand({ KeyId: keyArn, PendingWindowInDays: 7 }));
    expect(await provider.describeKey(keyArn)).toMatchObject({ enabled: false, state: 'PendingDeletion' });
    await expectKmsError(provider.generateDataKey(keyArn, CONTEXT), 'KeyUnavailableState');
    await expectKmsError(provider.decryptDataKey(generated.wrappedKey, keyArn, CONTEXT), 'KeyUnavailableState');
  });

  it('a blob that crashes local-kms still surfaces as a KmsError', async () => {
    // local-kms's blob parser (service.UnpackCiphertextBlob) does its bounds arithmetic in
    // uint8: with a first byte >= 250 the sums wrap, a slice goes out of range, the handler
    // panics and Go drops the connection (curl: "empty reply"). Real KMS answers
    // InvalidCiphertextException. What matters here: nothing but KmsError escapes the provider.
    const single = new AwsKmsProvider({
      settings: localKmsSettings(localKmsEndpoint() ?? '', { KMS_MAX_ATTEMPTS: 1 }),
      credentials: LOCAL_KMS_CREDENTIALS,
    });
    try {
      await expectKmsError(
        single.decryptDataKey(Buffer.from([0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9]), LOCAL_KMS_SEED.keys.tenantA.keyArn, CONTEXT),
        'Unavailable',
      );
    } finally {
      await single.close();
    }
  });
});

describe.skipIf(skipWithoutLocalKms())('AwsKmsProvider when KMS goes away (private local-kms)', () => {
  let kms: LocalKmsInstance;
  let provider: AwsKmsProvider;

  beforeAll(async () => {
    kms = await startLocalKms();
    provider = new AwsKmsProvider({
      settings: localKmsSettings(kms.endpoint, { KMS_CONNECT_TIMEOUT_MS: 200, KMS_TIMEOUT_MS: 1_000, KMS_MAX_ATTEMPTS: 2 }),
      credentials: LOCAL_KMS_CREDENTIALS,
    });
  });
  afterAll(async () => {
    await provider?.close();
    await kms?.dispose();
  });

  it('is Unavailable while KMS is down and recovers, old wrapped keys intact, after restart', async () => {
    const generated = await provider.generateDataKey('alias/tenant-a', CONTEXT);
    await kms.stop();
    const started = Date.now();
    await expectKmsError(provider.describeKey('alias/tenant-a'), 'Unavailable');
    await expectKmsError(provider.decryptDataKey(generated.wrappedKey, generated.keyArn, CONTEXT), 'Unavailable');
    expect(Date.now() - started).toBeLessThan(5_000);

    await kms.restart();
    const unwrapped = await provider.decryptDataKey(generated.wrappedKey, generated.keyArn, CONTEXT);
    expect(unwrapped.plaintextKey.equals(generated.plaintextKey)).toBe(true);
  });
});

describe('AwsKmsProvider with no KMS to talk to', () => {
  const fastFailing = (endpoint: string) =>
    new AwsKmsProvider({
      settings: localKmsSettings(endpoint, { KMS_CONNECT_TIMEOUT_MS: 200, KMS_TIMEOUT_MS: 300, KMS_MAX_ATTEMPTS: 2 }),
      credentials: LOCAL_KMS_CREDENTIALS,
    });

  it('closed port -> Unavailable, quickly', async () => {
    const port = await closedPort();
    const provider = fastFailing(`http://127.0.0.1:${port}`);
    const started = Date.now();
    const error = await expectKmsError(provider.generateDataKey('alias/default', CONTEXT), 'Unavailable');
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(error.message).toMatch(/GenerateDataKey/);
    await provider.close();
  });

  it('a peer that accepts but never answers -> Unavailable within the request timeout', async () => {
    // A TCP listener that never writes: connect succeeds, so only requestTimeout can end it.
    const sockets = new Set<import('node:net').Socket>();
    const server = createServer((socket) => sockets.add(socket));
    const port = await listen(server);
    const provider = fastFailing(`http://127.0.0.1:${port}`);
    try {
      const started = Date.now();
      await expectKmsError(provider.describeKey('alias/default'), 'Unavailable');
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(300);
      // 2 attempts x 300 ms + the SDK's jittered backoff (< 1 s at attempt 2)
      expect(elapsed).toBeLessThan(3_000);
    } finally {
      await provider.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((done) => server.close(done));
    }
  });
});

function listen(server: Server): Promise<number> {
  return new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      done(typeof address === 'object' && address ? address.port : 0);
    });
  });
}

/** A port that was free a moment ago and has nothing listening now. */
async function closedPort(): Promise<number> {
  const server = createServer();
  const port = await listen(server);
  await new Promise((done) => server.close(done));
  return port;
}
