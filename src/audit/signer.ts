/**
 * What the audit checkpoints need from a signing key: KMS Sign on an asymmetric key (aws), or
 * the local keystore's signing key (local). Kept apart from KeyProvider: the service's data
 * keys and the audit's signing key are different keys with different permissions.
 */

/** The signing algorithms a checkpoint may name (KMS SigningAlgorithmSpec values). */
export type CheckpointSigningAlgorithm = 'ECDSA_SHA_256' | 'RSASSA_PKCS1_V1_5_SHA_256' | 'RSASSA_PSS_SHA_256';

export const CHECKPOINT_SIGNING_ALGORITHMS: readonly CheckpointSigningAlgorithm[] = [
  'ECDSA_SHA_256',
  'RSASSA_PKCS1_V1_5_SHA_256',
  'RSASSA_PSS_SHA_256',
];

export interface AuditSignature {
  /** DER (ECDSA) or raw (RSA) signature bytes, as KMS returns them. */
  signature: Buffer;
  /** The key that signed, as a full ARN (from the Sign response). */
  keyArn: string;
  algorithm: CheckpointSigningAlgorithm;
  /** KMS request id of the Sign call (CloudTrail's requestID); a local UUID for the local signer. */
  kmsRequestId: string;
}

export interface AuditSigner {
  /** The key id the checkpoints name (the configured id, an ARN or alias). */
  readonly keyId: string;
  readonly algorithm: CheckpointSigningAlgorithm;
  /**
   * Signs SHA-256(message). Only the 32-byte digest leaves the process (KMS MessageType
   * DIGEST), so the checkpoint's size never meets KMS's message limit.
   */
  sign(message: Buffer): Promise<AuditSignature>;
  /** The public key, PEM (SPKI), for verifiers. */
  publicKey(): Promise<string>;
  close?(): void;
}
