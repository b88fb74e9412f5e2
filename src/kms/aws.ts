/**
 * KeyProvider over AWS KMS (or any endpoint speaking its JSON protocol, such as local-kms),
 * through @aws-sdk/client-kms v3.
 *
 * - The KMSClient is injected (tests, callers with special needs) or built from Config by
 *   `buildKmsClient`: explicit connect/request timeouts, keep-alive sockets, the SDK's
 *   standard retry mode (jittered exponential backoff, retry quota) capped at
 *   KMS_MAX_ATTEMPTS, and a user agent naming this service for CloudTrail.
 * - Every result carries `$metadata.requestId`, the id CloudTrail records as `requestID`.
 *   'unknown' only when the endpoint sends none (local-kms sends none).
 * - Plaintext data keys: the SDK's Uint8Array is copied into a Buffer we own, then zeroed, as
 *   the AWS Encryption SDK does, so exactly one live copy leaves this module. (The base64 JSON
 *   string the SDK parsed it from is immutable and beyond our reach.)
 * - SDK errors become KmsError via translateAwsError; messages never contain key material.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import {
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  KMSClient,
  ListAliasesCommand,
  ReEncryptCommand,
  type AliasListEntry,
  type KMSClientConfig,
} from '@aws-sdk/client-kms';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { Config } from '../config.js';
import { translateAwsError } from './aws-errors.js';
import { KmsError } from './errors.js';
import { assertStringContext, assertWellFormedKeyId, kmsArnPrefix } from './key-id.js';
import { silentLogger, type ProviderLogger } from './logger.js';
import {
  DATA_KEY_BYTES,
  type EncryptionContext,
  type GeneratedDataKey,
  type KeyAlias,
  type KeyDescription,
  type KeyProvider,
  type KmsOperation,
  type RewrappedDataKey,
  type UnwrappedDataKey,
} from './provider.js';
import { serviceUserAgent } from './user-agent.js';

/** Guards ListAliases against an endpoint that keeps answering Truncated with a marker. */
const MAX_ALIAS_PAGES = 1_000;

export type AwsKmsSettings = Pick<
  Config,
  'KMS_ENDPOINT' | 'AWS_REGION' | 'KMS_TIMEOUT_MS' | 'KMS_CONNECT_TIMEOUT_MS' | 'KMS_MAX_ATTEMPTS' | 'INSTANCE_ID'
>;

export interface AwsKmsProviderOptions {
  settings: AwsKmsSettings;
  /** Use this client instead of building one; the provider then does not destroy it on close. */
  client?: KMSClient;
  /** Credentials override for a built client (tests against local-kms); default: the SDK chain. */
  credentials?: KMSClientConfig['credentials'];
  logger?: ProviderLogger;
}

/**
 * Retry backoff of the SDK's standard strategy (@smithy/core retry, 2026 defaults): full
 * jitter, wait_i = random() × min(base × 2^i, 20 s), with base 1 s after a throttling error
 * and 50 ms after any other retryable one. Throttling (ThrottlingException,
 * LimitExceededException, TooManyRequestsException, HTTP 429) is therefore retried, with
 * jittered backoff, at most KMS_MAX_ATTEMPTS − 1 times, and the SDK's retry quota (500 tokens
 * per client, 5 per throttling retry, 14 per other retry) stops retries altogether when
 * KMS keeps failing. test/resilience/fault-matrix.test.ts checks the attempt count and time.
 */
const THROTTLING_BACKOFF_BASE_MS = 1_000;
const MAX_BACKOFF_MS = 20_000;
/** A Retry-After header from the endpoint may stretch one wait by up to this much (KMS sends none). */
const RETRY_AFTER_HINT_EXTRA_MS = 5_000;

/**
 * The longest one KMS call can take, retries included: every attempt bounded by the connect
 * and request timeouts, every wait by the throttling backoff cap (the larger one). The server's
 * idle-socket timeout is derived from it (src/app.ts) so it never cuts a request waiting on KMS.
 */
export function kmsCallBoundMs(
  settings: Pick<Config, 'KMS_TIMEOUT_MS' | 'KMS_CONNECT_TIMEOUT_MS' | 'KMS_MAX_ATTEMPTS'>,
  options: { retryAfterHints?: boolean } = {},
): number {
  let total = settings.KMS_MAX_ATTEMPTS * (settings.KMS_CONNECT_TIMEOUT_MS + settings.KMS_TIMEOUT_MS);
  for (let retry = 0; retry < settings.KMS_MAX_ATTEMPTS - 1; retry++) {
    total += Math.min(THROTTLING_BACKOFF_BASE_MS * 2 ** retry, MAX_BACKOFF_MS);
    if (options.retryAfterHints) total += RETRY_AFTER_HINT_EXTRA_MS;
  }
  return total;
}

export function buildKmsClient(
  settings: AwsKmsSettings,
  credentials?: KMSClientConfig['credentials'],
): KMSClient {
  const agentOptions = { keepAlive: true, maxSockets: 50 };
  return new KMSClient({
    ...(settings.KMS_ENDPOINT ? { endpoint: settings.KMS_ENDPOINT } : {}),
    ...(settings.AWS_REGION ? { region: settings.AWS_REGION } : {}),
    ...(credentials ? { credentials } : {}),
    maxAttempts: settings.KMS_MAX_ATTEMPTS,
    retryMode: 'standard',
    customUserAgent: serviceUserAgent(settings.INSTANCE_ID),
    requestHandler: new NodeHttpHandler({
      connectionTimeout: settings.KMS_CONNECT_TIMEOUT_MS,
      // requestTimeout bounds the whole attempt; without throwOnRequestTimeout the handler
      // only logs a warning when it is exceeded. socketTimeout also cuts a silent socket.
      requestTimeout: settings.KMS_TIMEOUT_MS,
      throwOnRequestTimeout: true,
      socketTimeout: settings.KMS_TIMEOUT_MS,
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
    }),
  });
}

export class AwsKmsProvider implements KeyProvider {
  readonly kind = 'aws' as const;
  private readonly client: KMSClient;
  private readonly ownsClient: boolean;

  constructor(options: AwsKmsProviderOptions) {
    this.client = options.client ?? buildKmsClient(options.settings, options.credentials);
    this.ownsClient = options.client === undefined;
    (options.logger ?? silentLogger).info(
      {
        kmsEndpoint: options.settings.KMS_ENDPOINT ?? 'AWS default',
        region: options.settings.AWS_REGION,
        maxAttempts: options.settings.KMS_MAX_ATTEMPTS,
      },
      'AWS KMS key provider ready',
    );
  }

  async generateDataKey(keyId: string, context: EncryptionContext): Promise<GeneratedDataKey> {
    assertWellFormedKeyId(keyId);
    assertStringContext(context);
    const out = await this.send('GenerateDataKey', () =>
      this.client.send(
        new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: contextParam(context) }),
      ),
    );
    const requestId = requestIdOf(out);
    const plaintextKey = takePlaintextKey(out.Plaintext, 'GenerateDataKey', requestId);
    if (!out.CiphertextBlob || out.CiphertextBlob.length === 0 || !out.KeyId) {
      plaintextKey.fill(0);
      throw malformedResponse('GenerateDataKey', requestId);
    }
    return { keyArn: out.KeyId, plaintextKey, wrappedKey: Buffer.from(out.CiphertextBlob), requestId };
  }

  async decryptDataKey(wrappedKey: Buffer, keyId: string, context: EncryptionContext): Promise<UnwrappedDataKey> {
    assertWellFormedKeyId(keyId);
    assertStringContext(context);
    // Naming KeyId makes KMS refuse a blob wrapped under any other key (IncorrectKeyException)
    // instead of silently using whichever key the blob names.
    const out = await this.send('Decrypt', () =>
      this.client.send(
        new DecryptCommand({ CiphertextBlob: wrappedKey, KeyId: keyId, EncryptionContext: contextParam(context) }),
      ),
    );
    const requestId = requestIdOf(out);
    const plaintextKey = takePlaintextKey(out.Plaintext, 'Decrypt', requestId);
    if (!out.KeyId) {
      plaintextKey.fill(0);
      throw malformedResponse('Decrypt', requestId);
    }
    return { keyArn: out.KeyId, plaintextKey, requestId };
  }

  async reEncryptDataKey(
    wrappedKey: Buffer,
    sourceKeyId: string,
    sourceContext: EncryptionContext,
    destinationKeyId: string,
    destinationContext: EncryptionContext,
  ): Promise<RewrappedDataKey> {
    assertWellFormedKeyId(sourceKeyId, 'sourceKeyId');
    assertWellFormedKeyId(destinationKeyId, 'destinationKeyId');
    assertStringContext(sourceContext, 'source encryption context');
    assertStringContext(destinationContext, 'destination encryption context');
    // The plaintext data key never leaves KMS during ReEncrypt.
    const out = await this.send('ReEncrypt', () =>
      this.client.send(
        new ReEncryptCommand({
          CiphertextBlob: wrappedKey,
          SourceKeyId: sourceKeyId,
          SourceEncryptionContext: contextParam(sourceContext),
          DestinationKeyId: destinationKeyId,
          DestinationEncryptionContext: contextParam(destinationContext),
        }),
      ),
    );
    const requestId = requestIdOf(out);
    if (!out.CiphertextBlob || out.CiphertextBlob.length === 0 || !out.KeyId) {
      throw malformedResponse('ReEncrypt', requestId);
    }
    return { keyArn: out.KeyId, wrappedKey: Buffer.from(out.CiphertextBlob), requestId };
  }

  async encryptDataKey(plaintextKey: Buffer, keyId: string, context: EncryptionContext): Promise<RewrappedDataKey> {
    assertWellFormedKeyId(keyId);
    assertStringContext(context);
    if (plaintextKey.length !== DATA_KEY_BYTES) throw new KmsError('InvalidRequest', `a data key is ${DATA_KEY_BYTES} bytes`);
    // A copy the SDK may keep: zeroed once the call is over, whatever its outcome.
    const copy = Uint8Array.from(plaintextKey);
    try {
      const out = await this.send('Encrypt', () =>
        this.client.send(new EncryptCommand({ KeyId: keyId, Plaintext: copy, EncryptionContext: contextParam(context) })),
      );
      const requestId = requestIdOf(out);
      if (!out.CiphertextBlob || out.CiphertextBlob.length === 0 || !out.KeyId) throw malformedResponse('Encrypt', requestId);
      return { keyArn: out.KeyId, wrappedKey: Buffer.from(out.CiphertextBlob), requestId };
    } finally {
      copy.fill(0);
    }
  }

  async describeKey(keyId: string): Promise<KeyDescription> {
    assertWellFormedKeyId(keyId);
    const out = await this.send('DescribeKey', () => this.client.send(new DescribeKeyCommand({ KeyId: keyId })));
    const requestId = requestIdOf(out);
    const metadata = out.KeyMetadata;
    if (!metadata?.Arn) throw malformedResponse('DescribeKey', requestId);
    return {
      keyArn: metadata.Arn,
      enabled: metadata.Enabled === true,
      state: metadata.KeyState ?? (metadata.Enabled ? 'Enabled' : 'Disabled'),
      requestId,
    };
  }

  async listAliases(): Promise<KeyAlias[]> {
    const aliases: KeyAlias[] = [];
    let marker: string | undefined;
    for (let page = 0; page < MAX_ALIAS_PAGES; page += 1) {
      const out = await this.send('ListAliases', () =>
        this.client.send(new ListAliasesCommand({ Limit: 100, ...(marker ? { Marker: marker } : {}) })),
      );
      for (const entry of out.Aliases ?? []) {
        const alias = toKeyAlias(entry);
        if (alias) aliases.push(alias);
      }
      if (!out.Truncated || !out.NextMarker || out.NextMarker === marker) return aliases;
      marker = out.NextMarker;
    }
    throw new KmsError('Unavailable', `KMS ListAliases returned more than ${MAX_ALIAS_PAGES} pages`);
  }

  async close(): Promise<void> {
    if (this.ownsClient) this.client.destroy();
  }

  private async send<T>(operation: KmsOperation, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw translateAwsError(error, operation);
    }
  }
}

/** KMS treats an absent and an empty context alike; send none rather than `{}`. */
function contextParam(context: EncryptionContext): Record<string, string> | undefined {
  const keys = Object.keys(context);
  return keys.length === 0 ? undefined : { ...context };
}

function requestIdOf(out: { $metadata: { requestId?: string } }): string {
  return out.$metadata.requestId || 'unknown';
}

/** Copies the SDK's plaintext into a Buffer we own and zeroes the SDK's array. */
function takePlaintextKey(sdkPlaintext: Uint8Array | undefined, operation: KmsOperation, requestId: string): Buffer {
  if (!sdkPlaintext || sdkPlaintext.length !== DATA_KEY_BYTES) {
    sdkPlaintext?.fill(0);
    throw new KmsError(
      'Unavailable',
      `KMS ${operation} returned a data key of ${sdkPlaintext?.length ?? 0} bytes, expected ${DATA_KEY_BYTES}`,
      requestId,
    );
  }
  // Buffer.alloc (not allocUnsafe): a dedicated allocation, never a slice of the shared pool.
  const owned = Buffer.alloc(DATA_KEY_BYTES);
  owned.set(sdkPlaintext);
  sdkPlaintext.fill(0);
  return owned;
}

function malformedResponse(operation: KmsOperation, requestId: string): KmsError {
  return new KmsError('Unavailable', `KMS ${operation} returned a response without the expected fields`, requestId);
}

/**
 * Aliases without a target (reserved AWS-managed names not yet in use) are dropped, and so
 * are `alias/aws/*`: AWS managed keys can only be used through their integrated AWS service,
 * never by this one. The key ARN is built from the alias ARN's partition/region/account.
 */
function toKeyAlias(entry: AliasListEntry): KeyAlias | undefined {
  const { AliasName: aliasName, AliasArn: aliasArn, TargetKeyId: target } = entry;
  if (!aliasName || !aliasArn || !target || aliasName.startsWith('alias/aws/')) return undefined;
  if (target.startsWith('arn:')) return { aliasName, aliasArn, keyArn: target };
  const prefix = kmsArnPrefix(aliasArn);
  if (!prefix) return undefined;
  return { aliasName, aliasArn, keyArn: `${prefix}key/${target}` };
}
