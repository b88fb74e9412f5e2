/**
 * The AWS audit signer: KMS Sign on an asymmetric SIGN_VERIFY key (ECC_NIST_P256, or RSA with
 * an RSASSA algorithm). The private key never leaves KMS, so nobody on this host can sign a
 * checkpoint without kms:Sign. Only the SHA-256 of the checkpoint is sent (MessageType DIGEST).
 * GetPublicKey is for verifiers (kms:GetPublicKey); the service itself never calls it.
 */
import { createHash } from 'node:crypto';
import { GetPublicKeyCommand, SignCommand, type KMSClient, type KMSClientConfig } from '@aws-sdk/client-kms';
import type { AuditSignature, AuditSigner, CheckpointSigningAlgorithm } from './signer.js';
import { buildKmsClient, type AwsKmsSettings } from '../kms/aws.js';
import { translateAwsError } from '../kms/aws-errors.js';

export interface AwsAuditSignerOptions {
  settings: AwsKmsSettings;
  /** AUDIT_SIGNING_KEY_ID: key id, key ARN, alias name or alias ARN. */
  keyId: string;
  algorithm: CheckpointSigningAlgorithm;
  /** Use this client (not destroyed on close); default: one built from `settings`. */
  client?: KMSClient;
  credentials?: KMSClientConfig['credentials'];
}

export class AwsAuditSigner implements AuditSigner {
  readonly keyId: string;
  readonly algorithm: CheckpointSigningAlgorithm;
  private readonly client: KMSClient;
  private readonly ownsClient: boolean;

  constructor(options: AwsAuditSignerOptions) {
    this.keyId = options.keyId;
    this.algorithm = options.algorithm;
    this.client = options.client ?? buildKmsClient(options.settings, options.credentials);
    this.ownsClient = options.client === undefined;
  }

  async sign(message: Buffer): Promise<AuditSignature> {
    const digest = createHash('sha256').update(message).digest();
    let out;
    try {
      out = await this.client.send(
        new SignCommand({ KeyId: this.keyId, Message: digest, MessageType: 'DIGEST', SigningAlgorithm: this.algorithm }),
      );
    } catch (error) {
      throw translateAwsError(error, 'Sign');
    }
    if (!out.Signature || out.Signature.length === 0 || !out.KeyId) {
      throw new Error(`KMS Sign returned no signature (request ${out.$metadata.requestId ?? 'unknown'})`);
    }
    return {
      signature: Buffer.from(out.Signature),
      keyArn: out.KeyId,
      algorithm: this.algorithm,
      kmsRequestId: out.$metadata.requestId || 'unknown',
    };
  }

  async publicKey(): Promise<string> {
    return fetchPublicKeyPem(this.client, this.keyId);
  }

  close(): void {
    if (this.ownsClient) this.client.destroy();
  }
}

/** GetPublicKey -> PEM (SPKI). For verifiers: needs kms:GetPublicKey on the key. */
export async function fetchPublicKeyPem(client: KMSClient, keyId: string): Promise<string> {
  let out;
  try {
    out = await client.send(new GetPublicKeyCommand({ KeyId: keyId }));
  } catch (error) {
    throw translateAwsError(error, 'GetPublicKey');
  }
  if (!out.PublicKey) throw new Error(`KMS GetPublicKey returned no key for ${keyId}`);
  const base64 = Buffer.from(out.PublicKey).toString('base64');
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN PUBLIC KEY-----\n${lines.join('\n')}\n-----END PUBLIC KEY-----\n`;
}
