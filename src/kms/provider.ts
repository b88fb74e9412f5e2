/**
 * The one interface every key provider implements: the four KMS operations envelope
 * encryption needs, plus the two look-ups authorization needs.
 *
 * Every call result carries `requestId`: for AWS it is the SDK's `$metadata.requestId`, the
 * value CloudTrail records as `requestID`, so the audit log can be joined with CloudTrail.
 * The local provider makes its own ids in the same spirit.
 *
 * Ownership of plaintext key buffers returned here passes to the caller, who must zero them
 * (`buffer.fill(0)`) when done.
 */
export type EncryptionContext = Readonly<Record<string, string>>;

/** Data keys are AES-256 keys: both providers return exactly this many plaintext bytes. */
export const DATA_KEY_BYTES = 32;

export type KmsOperation =
  | 'GenerateDataKey'
  | 'Decrypt'
  | 'ReEncrypt'
  | 'Encrypt'
  | 'DescribeKey'
  | 'ListAliases';

export interface GeneratedDataKey {
  /** Full ARN of the KMS key that wrapped the data key. */
  keyArn: string;
  /** 32 bytes. The caller owns it and must zero it. */
  plaintextKey: Buffer;
  /** The KMS CiphertextBlob: opaque to us. */
  wrappedKey: Buffer;
  requestId: string;
}

export interface UnwrappedDataKey {
  keyArn: string;
  /** 32 bytes. The caller owns it and must zero it. */
  plaintextKey: Buffer;
  requestId: string;
}

export interface RewrappedDataKey {
  keyArn: string;
  wrappedKey: Buffer;
  requestId: string;
}

export interface KeyDescription {
  keyArn: string;
  enabled: boolean;
  /** KMS KeyState, e.g. Enabled, Disabled, PendingDeletion. */
  state: string;
  requestId: string;
}

export interface KeyAlias {
  /** e.g. `alias/default` */
  aliasName: string;
  aliasArn: string;
  keyArn: string;
}

export interface KeyProvider {
  readonly kind: 'local' | 'aws';
  generateDataKey(keyId: string, context: EncryptionContext): Promise<GeneratedDataKey>;
  /** `keyId` is the ARN recorded in the envelope: KMS refuses a blob wrapped by another key. */
  decryptDataKey(wrappedKey: Buffer, keyId: string, context: EncryptionContext): Promise<UnwrappedDataKey>;
  reEncryptDataKey(
    wrappedKey: Buffer,
    sourceKeyId: string,
    sourceContext: EncryptionContext,
    destinationKeyId: string,
    destinationContext: EncryptionContext,
  ): Promise<RewrappedDataKey>;
  /**
   * KMS Encrypt of a plaintext data key under another key (a key set's other keys). The
   * caller keeps ownership of `plaintextKey` (and zeroes it).
   */
  encryptDataKey(plaintextKey: Buffer, keyId: string, context: EncryptionContext): Promise<RewrappedDataKey>;
  /** Resolves an alias, key id or ARN to the key's ARN and state. */
  describeKey(keyId: string): Promise<KeyDescription>;
  /** Every alias with a target key (used by GET /v1/keys and to match policy globs on aliases). */
  listAliases(): Promise<KeyAlias[]>;
  close(): Promise<void>;
}
