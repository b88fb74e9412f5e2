/**
 * Where the migration gets its data keys: the source file's (unwrapped) and the new
 * ciphertext's (fresh). Through the service (`/v1/unwrap` under `datakey:unwrap`, `/v1/datakey`
 * with `datakey:plaintext`: the policy and the audit trail see every file), or straight from
 * KMS with the AWS SDK (`--kms-direct`, for an operator with the IAM rights).
 */
import { DecryptCommand, GenerateDataKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import type { Context as EncryptionContext } from '../context-header.js';
import type { IssuedKey } from './stream-seal.js';

export interface MigrationKeys {
  /** The data key inside a KMS ciphertext blob: 32 bytes the caller zeroes. */
  unwrap(blob: Buffer, keyId: string, context: EncryptionContext): Promise<Buffer>;
  /** A fresh data key under `keyId` and `context`, as the service's /v1/datakey issues it. */
  issue(keyId: string, context: EncryptionContext): Promise<IssuedKey>;
}

/** A data key could not be had; `code` is the service's problem code or KMS's error name. */
export class KeySourceError extends Error {
  override readonly name = 'KeySourceError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const DATA_KEY_BYTES = 32;

/** KMS takes no EncryptionContext rather than an empty one (as the service's provider sends it). */
function kmsContext(context: EncryptionContext): Record<string, string> | undefined {
  return Object.keys(context).length > 0 ? { ...context } : undefined;
}

function checkedKey(key: Uint8Array | undefined, what: string): Buffer {
  if (!key || key.length !== DATA_KEY_BYTES) throw new KeySourceError('BadDataKey', `${what} is not a 32-byte data key`);
  return Buffer.from(key);
}

export function kmsDirectKeys(client: KMSClient): MigrationKeys {
  const failed = (what: string, error: unknown): KeySourceError =>
    error instanceof KeySourceError ? error : new KeySourceError((error as Error).name || 'KmsError', `KMS ${what} failed: ${(error as Error).message}`);
  return {
    async unwrap(blob, keyId, context) {
      try {
        const out = await client.send(new DecryptCommand({ CiphertextBlob: blob, KeyId: keyId, EncryptionContext: kmsContext(context) }));
        const key = checkedKey(out.Plaintext, 'KMS Decrypt answered a key that');
        out.Plaintext?.fill(0);
        return key;
      } catch (error) {
        throw failed('Decrypt of the wrapped key', error);
      }
    },
    async issue(keyId, context) {
      try {
        const out = await client.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: kmsContext(context) }));
        const plaintextKey = checkedKey(out.Plaintext, 'KMS GenerateDataKey answered a key that');
        out.Plaintext?.fill(0);
        if (!out.CiphertextBlob || !out.KeyId) throw new KeySourceError('KmsError', 'KMS GenerateDataKey answered without a wrapped key or key ARN');
        return { keyArn: out.KeyId, wrappedKey: Buffer.from(out.CiphertextBlob), plaintextKey };
      } catch (error) {
        throw failed('GenerateDataKey', error);
      }
    },
  };
}
