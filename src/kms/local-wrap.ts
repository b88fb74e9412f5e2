/**
 * The local provider's wrapped data key ("CiphertextBlob") and its AAD.
 *
 * Fixed layout, 77 bytes, all lengths known from the version byte before anything is read:
 *
 *   offset  size  field
 *   0       1     version (0x01)
 *   1       16    master key id (the UUID's 16 bytes), so Decrypt knows which key wrapped it
 *   17      12    AES-GCM IV (random)
 *   29      32    data key encrypted with AES-256-GCM under the master key
 *   61      16    GCM tag
 *
 * AAD = bytes 0..16 (version + key id) || canonicalContext(encryption context).
 * So the blob is bound to its master key and to the exact context, as KMS binds them.
 *
 * canonicalContext gives KMS semantics: pair order does not matter (pairs sorted by the
 * UTF-8 bytes of their key), absent and empty contexts are the same, and every key and value
 * is length-prefixed so that {a: 'bc'} and {ab: 'c'} differ:
 *
 *   u32be pairCount, then per pair: u32be keyLength, key (UTF-8), u32be valueLength, value (UTF-8)
 *
 * Random 96-bit IVs per wrap: a master key wraps one data key per cache refill, far below the
 * 2^32-invocations bound NIST SP 800-38D sets for random IVs.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { DATA_KEY_BYTES, type EncryptionContext } from './provider.js';

export const WRAP_VERSION = 0x01;
const KEY_ID_BYTES = 16;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + KEY_ID_BYTES;
const IV_OFFSET = HEADER_BYTES;
const CIPHERTEXT_OFFSET = IV_OFFSET + IV_BYTES;
const TAG_OFFSET = CIPHERTEXT_OFFSET + DATA_KEY_BYTES;
export const WRAPPED_KEY_BYTES = TAG_OFFSET + TAG_BYTES;

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isKeyUuid(value: string): boolean {
  return UUID_PATTERN.test(value);
}

export function canonicalContext(context: EncryptionContext): Buffer {
  const pairs = Object.entries(context).map(([key, value]) => [Buffer.from(key, 'utf8'), Buffer.from(value, 'utf8')] as const);
  pairs.sort((left, right) => Buffer.compare(left[0], right[0]));
  let size = 4;
  for (const [key, value] of pairs) size += 8 + key.length + value.length;
  const out = Buffer.alloc(size);
  let offset = out.writeUInt32BE(pairs.length, 0);
  for (const [key, value] of pairs) {
    offset = out.writeUInt32BE(key.length, offset);
    offset += key.copy(out, offset);
    offset = out.writeUInt32BE(value.length, offset);
    offset += value.copy(out, offset);
  }
  return out;
}

/** Wraps a 32-byte data key under `masterKey` (32 bytes), binding key id and context. */
export function wrapDataKey(masterKey: Buffer, keyUuid: string, dataKey: Buffer, context: EncryptionContext): Buffer {
  if (dataKey.length !== DATA_KEY_BYTES) throw new RangeError('data key must be 32 bytes');
  const blob = Buffer.alloc(WRAPPED_KEY_BYTES);
  blob[0] = WRAP_VERSION;
  blob.write(keyUuid.replaceAll('-', ''), 1, KEY_ID_BYTES, 'hex');
  randomBytes(IV_BYTES).copy(blob, IV_OFFSET);
  const cipher = createCipheriv('aes-256-gcm', masterKey, blob.subarray(IV_OFFSET, CIPHERTEXT_OFFSET), {
    authTagLength: TAG_BYTES,
  });
  cipher.setAAD(aadFor(blob, context));
  const encrypted = cipher.update(dataKey);
  cipher.final();
  encrypted.copy(blob, CIPHERTEXT_OFFSET);
  cipher.getAuthTag().copy(blob, TAG_OFFSET);
  return blob;
}

/**
 * Reads the key id from a blob, or undefined if the blob is not one of ours. Only the version
 * byte and the total length are looked at before anything else, so no input of any length can
 * make this allocate more than a 36-character id or throw.
 */
export function wrappedKeyId(blob: Uint8Array): string | undefined {
  if (blob.length !== WRAPPED_KEY_BYTES || blob[0] !== WRAP_VERSION) return undefined;
  const hex = Buffer.from(blob.buffer, blob.byteOffset + 1, KEY_ID_BYTES).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Unwraps a blob already checked by `wrappedKeyId`. Returns the data key (caller owns and
 * zeroes it) or undefined when authentication fails: wrong key, wrong context, tampering.
 */
export function unwrapDataKey(masterKey: Buffer, blob: Uint8Array, context: EncryptionContext): Buffer | undefined {
  const bytes = Buffer.from(blob.buffer, blob.byteOffset, WRAPPED_KEY_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', masterKey, bytes.subarray(IV_OFFSET, CIPHERTEXT_OFFSET), {
    authTagLength: TAG_BYTES,
  });
  decipher.setAAD(aadFor(bytes, context));
  decipher.setAuthTag(bytes.subarray(TAG_OFFSET, WRAPPED_KEY_BYTES));
  // GCM releases plaintext before the tag is checked; it is zeroed if the check fails.
  const dataKey = decipher.update(bytes.subarray(CIPHERTEXT_OFFSET, TAG_OFFSET));
  try {
    decipher.final();
  } catch {
    dataKey.fill(0);
    return undefined;
  }
  return dataKey;
}

function aadFor(blob: Buffer, context: EncryptionContext): Buffer {
  return Buffer.concat([blob.subarray(0, HEADER_BYTES), canonicalContext(context)]);
}
