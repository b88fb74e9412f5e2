/**
 * MigrationKeys through the service, with the client library: `POST /v1/unwrap` for the source
 * file's data key (grant `datakey:unwrap`) and `POST /v1/datakey` with `includePlaintext` for
 * the new one (grant `datakey:plaintext`). Every file is then authorized by the policy and in
 * the audit trail, and the operator's machine needs no KMS rights.
 */
import type { EnvelopeClient } from '../client.js';
import type { Context as EncryptionContext } from '../context-header.js';
import { EnvelopeProblem } from '../errors.js';
import { KeySourceError, type MigrationKeys } from './migration-keys.js';

const DATA_KEY_BYTES = 32;

function keyBytes(base64: string | undefined, operation: string): Buffer {
  const key = Buffer.from(base64 ?? '', 'base64');
  if (key.length !== DATA_KEY_BYTES) {
    key.fill(0);
    throw new KeySourceError('BadDataKey', `${operation} answered no 32-byte plaintext key`);
  }
  return key;
}

/** A problem keeps its code (the report's); its message names the operation, status and missing grant. */
function failure(error: unknown): unknown {
  return error instanceof EnvelopeProblem ? new KeySourceError(error.code, error.message) : error;
}

export function serviceKeys(client: EnvelopeClient): MigrationKeys {
  return {
    async unwrap(blob: Buffer, keyId: string, context: EncryptionContext) {
      try {
        const answer = await client.unwrap({ keyId, wrappedKey: blob.toString('base64'), context: { ...context } });
        return keyBytes(answer.plaintextKey, 'POST /v1/unwrap');
      } catch (error) {
        throw failure(error);
      }
    },
    async issue(keyId: string, context: EncryptionContext) {
      try {
        const answer = await client.dataKey({ keyId, context: { ...context }, includePlaintext: true });
        const plaintextKey = keyBytes(answer.plaintextKey, 'POST /v1/datakey');
        return { keyArn: answer.keyId, wrappedKey: Buffer.from(answer.wrappedKey, 'base64'), plaintextKey };
      } catch (error) {
        throw failure(error);
      }
    },
  };
}
