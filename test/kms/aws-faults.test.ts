/**
 * AwsKmsProvider against a scripted KMS: a tiny HTTP server on loopback speaking the KMS JSON
 * 1.1 protocol. It exists for what no real peer here can produce: local-kms never throttles,
 * never fails internally, never denies access and sends no request ids; real KMS cannot be
 * made to do those things on demand. Everything else is tested against local-kms.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { KMSClient } from '@aws-sdk/client-kms';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AwsKmsProvider } from '../../src/kms/aws.js';
import { SERVICE_VERSION } from '../../src/version.js';
import { LOCAL_KMS_CREDENTIALS, localKmsSettings } from '../helpers/local-kms.js';
import { expectKmsError } from './kms-assert.js';

interface Recorded {
  target: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}
interface Scripted {
  status?: number;
  requestId?: string;
  body: unknown;
}

const ARN = 'arn:aws:kms:eu-west-2:111122223333:key/6f743fd5-495b-4da8-bcea-73337f197393';
const KEY = Buffer.alloc(32, 7);
const requests: Recorded[] = [];
let respond: (request: Recorded) => Scripted = () => ({ status: 500, body: {} });
let server: Server;
let endpoint: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const request: Recorded = {
        target: String(req.headers['x-amz-target'] ?? '').replace('TrentService.', ''),
        headers: req.headers,
        body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
      };
      requests.push(request);
      const answer = respond(request);
      res.writeHead(answer.status ?? 200, {
        'content-type': 'application/x-amz-json-1.1',
        ...(answer.requestId ? { 'x-amzn-requestid': answer.requestId } : {}),
      });
      res.end(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const address = server.address();
  endpoint = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((done) => server.close(done));
});
afterEach(() => {
  requests.length = 0;
});

function provider(maxAttempts = 1): AwsKmsProvider {
  return new AwsKmsProvider({
    settings: localKmsSettings(endpoint, { KMS_MAX_ATTEMPTS: maxAttempts, INSTANCE_ID: 'pod-7' }),
    credentials: LOCAL_KMS_CREDENTIALS,
  });
}

const fault = (type: string, status = 400, message = 'scripted') => (): Scripted => ({
  status,
  requestId: `req-${type}`,
  body: { __type: type, message },
});

describe('successful calls', () => {
  it('sends KMS the right request and returns its requestId, key ARN and a 32-byte key', async () => {
    respond = () => ({
      requestId: 'req-1234',
      body: { KeyId: ARN, Plaintext: KEY.toString('base64'), CiphertextBlob: Buffer.from('blob').toString('base64') },
    });
    const kms = provider();
    const generated = await kms.generateDataKey('alias/tenant-a', { tenant: 'acme' });
    expect(generated).toMatchObject({ keyArn: ARN, requestId: 'req-1234' });
    expect(generated.plaintextKey.equals(KEY)).toBe(true);
    expect(generated.wrappedKey.toString()).toBe('blob');
    expect(requests[0]).toMatchObject({
      target: 'GenerateDataKey',
      body: { KeyId: 'alias/tenant-a', KeySpec: 'AES_256', EncryptionContext: { tenant: 'acme' } },
    });
    await kms.close();
  });

  it('names the service, its version and the instance in the user agent (CloudTrail userAgent)', async () => {
    respond = () => ({ body: { KeyMetadata: { Arn: ARN, Enabled: true, KeyState: 'Enabled' } } });
    const kms = provider();
    await kms.describeKey(ARN);
    const agent = `${String(requests[0]?.headers['user-agent'])} ${String(requests[0]?.headers['x-amz-user-agent'])}`;
    expect(agent).toContain(`envelope-service/${SERVICE_VERSION}`);
    expect(agent).toContain('instance/pod-7');
    await kms.close();
  });

  it("falls back to requestId 'unknown' only when KMS sends none", async () => {
    respond = () => ({ body: { KeyMetadata: { Arn: ARN, Enabled: false, KeyState: 'Disabled' } } });
    const kms = provider();
    expect(await kms.describeKey(ARN)).toEqual({ keyArn: ARN, enabled: false, state: 'Disabled', requestId: 'unknown' });
    await kms.close();
  });

  it('names KeyId on Decrypt and both keys and contexts on ReEncrypt', async () => {
    respond = (request) =>
      request.target === 'Decrypt'
        ? { requestId: 'req-d', body: { KeyId: ARN, Plaintext: KEY.toString('base64') } }
        : { requestId: 'req-r', body: { KeyId: ARN, SourceKeyId: ARN, CiphertextBlob: 'AQID' } };
    const kms = provider();
    await kms.decryptDataKey(Buffer.from('blob'), ARN, { a: '1' });
    await kms.reEncryptDataKey(Buffer.from('blob'), ARN, { a: '1' }, 'alias/tenant-b', { b: '2' });
    expect(requests[0]?.body).toMatchObject({ KeyId: ARN, EncryptionContext: { a: '1' } });
    expect(requests[1]?.body).toMatchObject({
      SourceKeyId: ARN,
      SourceEncryptionContext: { a: '1' },
      DestinationKeyId: 'alias/tenant-b',
      DestinationEncryptionContext: { b: '2' },
    });
    await kms.close();
  });

  it("copies the SDK's plaintext into its own Buffer and zeroes the SDK's array", async () => {
    respond = () => ({ body: { KeyId: ARN, Plaintext: KEY.toString('base64'), CiphertextBlob: 'AQID' } });
    const client = new KMSClient({ endpoint, region: 'eu-west-2', credentials: LOCAL_KMS_CREDENTIALS, maxAttempts: 1 });
    let sdkPlaintext: Uint8Array | undefined;
    client.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        sdkPlaintext = (result.output as { Plaintext?: Uint8Array }).Plaintext;
        return result;
      },
      { step: 'initialize', name: 'capturePlaintext' },
    );
    const kms = new AwsKmsProvider({ settings: localKmsSettings(endpoint), client });
    const generated = await kms.generateDataKey(ARN, {});
    expect(generated.plaintextKey.equals(KEY)).toBe(true);
    expect(sdkPlaintext).toBeDefined();
    expect(Buffer.from(sdkPlaintext!).equals(Buffer.alloc(32))).toBe(true);
    await kms.close(); // injected client: not destroyed by the provider
    client.destroy();
  });

  it('refuses a data key that is not 32 bytes', async () => {
    respond = () => ({
      requestId: 'req-short',
      body: { KeyId: ARN, Plaintext: Buffer.alloc(16, 1).toString('base64'), CiphertextBlob: 'AQID' },
    });
    const kms = provider();
    const error = await expectKmsError(kms.generateDataKey(ARN, {}), 'Unavailable');
    expect(error.requestId).toBe('req-short');
    await kms.close();
  });

  it('pages through ListAliases, keeping only aliases with a target, building key ARNs', async () => {
    respond = (request) =>
      request.body.Marker === undefined
        ? {
            body: {
              Truncated: true,
              NextMarker: 'page-2',
              Aliases: [
                { AliasName: 'alias/tenant-a', AliasArn: 'arn:aws:kms:eu-west-2:111122223333:alias/tenant-a', TargetKeyId: 'k-a' },
                { AliasName: 'alias/unused', AliasArn: 'arn:aws:kms:eu-west-2:111122223333:alias/unused' },
              ],
            },
          }
        : {
            body: {
              Truncated: false,
              Aliases: [
                { AliasName: 'alias/aws/s3', AliasArn: 'arn:aws:kms:eu-west-2:111122223333:alias/aws/s3', TargetKeyId: 'k-s3' },
                { AliasName: 'alias/cn', AliasArn: 'arn:aws-cn:kms:cn-north-1:222233334444:alias/cn', TargetKeyId: 'k-cn' },
              ],
            },
          };
    const kms = provider();
    expect(await kms.listAliases()).toEqual([
      {
        aliasName: 'alias/tenant-a',
        aliasArn: 'arn:aws:kms:eu-west-2:111122223333:alias/tenant-a',
        keyArn: 'arn:aws:kms:eu-west-2:111122223333:key/k-a',
      },
      {
        aliasName: 'alias/cn',
        aliasArn: 'arn:aws-cn:kms:cn-north-1:222233334444:alias/cn',
        keyArn: 'arn:aws-cn:kms:cn-north-1:222233334444:key/k-cn',
      },
    ]);
    expect(requests.map((request) => request.body.Marker)).toEqual([undefined, 'page-2']);
    await kms.close();
  });
});

describe('error translation', () => {
  it('ThrottlingException -> Throttled after the SDK retried, keeping the requestId', async () => {
    respond = fault('ThrottlingException');
    const kms = provider(2);
    const error = await expectKmsError(kms.describeKey(ARN), 'Throttled');
    expect(error.requestId).toBe('req-ThrottlingException');
    expect(requests).toHaveLength(2); // KMS_MAX_ATTEMPTS
    await kms.close();
  });

  it.each([
    ['LimitExceededException', 400, 'Throttled'],
    ['SomethingNew', 429, 'Throttled'],
    ['KMSInternalException', 500, 'Unavailable'],
    ['DependencyTimeoutException', 503, 'Unavailable'],
    ['SomethingNew', 502, 'Unavailable'],
    ['AccessDeniedException', 400, 'AccessDenied'],
    ['UnrecognizedClientException', 400, 'AccessDenied'],
    ['IncorrectKeyException', 400, 'InvalidCiphertext'],
    ['InvalidCiphertextException', 400, 'InvalidCiphertext'],
    ['NotFoundException', 400, 'KeyNotFound'],
    ['DisabledException', 400, 'KeyDisabled'],
    ['KMSInvalidStateException', 400, 'KeyUnavailableState'],
    ['ValidationException', 400, 'InvalidRequest'],
    ['InvalidKeyUsageException', 400, 'InvalidRequest'],
  ] as const)('%s (HTTP %i) -> %s', async (type, status, code) => {
    respond = fault(type, status);
    const kms = provider();
    const error = await expectKmsError(kms.decryptDataKey(Buffer.from('blob'), ARN, {}), code);
    expect(error.requestId).toBe(`req-${type}`);
    await kms.close();
  });

  it('a non-JSON 503 page -> Unavailable', async () => {
    respond = () => ({ status: 503, body: '<html>Service Unavailable</html>' });
    const kms = provider();
    await expectKmsError(kms.describeKey(ARN), 'Unavailable');
    await kms.close();
  });

  it("never copies KMS's message (which may echo request values) into the KmsError", async () => {
    const echoed = Buffer.from('wrapped-key-bytes').toString('base64');
    respond = fault('ValidationException', 400, `Value '${echoed}' at 'CiphertextBlob' failed to satisfy constraint`);
    const kms = provider();
    const error = await expectKmsError(kms.decryptDataKey(Buffer.from('wrapped-key-bytes'), ARN, {}), 'InvalidRequest');
    expect(error.message).not.toContain(echoed);
    expect(error.message).toContain('ValidationException');
    await kms.close();
  });
});
