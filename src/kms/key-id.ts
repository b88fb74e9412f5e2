/**
 * Key identifier checks shared by both providers.
 *
 * KMS accepts four spellings of a key: a key id (UUID, or `mrk-…` for multi-Region keys), a key
 * ARN, an alias name (`alias/…`) and an alias ARN. Anything else KMS answers with
 * NotFoundException or ValidationException depending on the shape. We pre-check only what is
 * malformed whatever the key store (empty, over KMS's 2048-character limit, control characters
 * or spaces), so both providers reject it identically as InvalidRequest without a round trip;
 * everything else is KMS's (or the keystore's) decision, and "does not exist" is KeyNotFound.
 */
import { KmsError } from './errors.js';

/** KMS's documented maximum length of the KeyId parameter. */
export const MAX_KEY_ID_LENGTH = 2048;

// Printable ASCII without space: every valid key id, ARN and alias name fits in it.
const PRINTABLE_NO_SPACE = /^[\x21-\x7e]+$/;

export function assertWellFormedKeyId(keyId: unknown, label = 'keyId'): asserts keyId is string {
  if (typeof keyId !== 'string' || keyId.length === 0) {
    throw new KmsError('InvalidRequest', `${label} must be a non-empty string`);
  }
  if (keyId.length > MAX_KEY_ID_LENGTH) {
    throw new KmsError('InvalidRequest', `${label} is longer than ${MAX_KEY_ID_LENGTH} characters`);
  }
  if (!PRINTABLE_NO_SPACE.test(keyId)) {
    throw new KmsError('InvalidRequest', `${label} contains characters no key id, alias or ARN can contain`);
  }
}

/** Encryption context values must be strings: JSON input can smuggle anything else in. */
export function assertStringContext(context: unknown, label = 'encryption context'): void {
  if (context === null || typeof context !== 'object' || Array.isArray(context)) {
    throw new KmsError('InvalidRequest', `${label} must be an object of strings`);
  }
  for (const value of Object.values(context)) {
    if (typeof value !== 'string') {
      throw new KmsError('InvalidRequest', `${label} values must be strings`);
    }
  }
}

/**
 * `arn:<partition>:kms:<region>:<account>:<resource>` -> the part before `<resource>`,
 * e.g. `arn:aws:kms:eu-west-2:111122223333:`. Undefined when `arn` is not a KMS ARN.
 */
export function kmsArnPrefix(arn: string): string | undefined {
  const parts = arn.split(':');
  if (parts.length < 6 || parts[0] !== 'arn' || parts[2] !== 'kms') return undefined;
  return `${parts.slice(0, 5).join(':')}:`;
}
