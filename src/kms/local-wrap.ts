/**
 * The local provider's wrapped data key ("CiphertextBlob") and its AAD.
 *
 * The first byte is the version; it fixes the whole layout and length before anything else
 * is read. New wraps are version 2; version 1 blobs (written before per-wrap key derivation)
 * still unwrap.
 *
 * Version 2, 97 bytes: a fresh key per wrap.
 *
 *   offset  size  field
 *   0       1     version (0x02)
 *   1       16    master key id (the UUID's 16 bytes), so Decrypt knows which key wrapped it
 *   17      32    salt (random)
 *   49      32    data key encrypted with AES-256-GCM under the wrap key
 *   81      16    GCM tag
 *
 *   wrap key || IV = HKDF-SHA-256(ikm = master key, salt, info = "envelope-service/local-wrap/v2"
 *                    || bytes 0..16, length 44): the first 32 bytes are the key, the last 12 the IV.
 *
 * Every wrap uses its own key (a 256-bit salt repeats with probability ~2^-128 even after 2^64
 * wraps), so each GCM key encrypts exactly one message: the NIST SP 800-38D limit of 2^32
 * random-IV invocations per key does not apply at any wrap rate. This is how AWS KMS itself
 * derives a key per call from its HSM backing key.
 *
 * Version 1, 77 bytes (unwrap only): version (0x01), key id (16), random IV (12), data key
 * encrypted under the master key itself (32), tag (16).
 *
 * AAD (both versions) = bytes 0..16 (version + key id) || canonicalContext(encryption context).
 * So the blob is bound to its master key and to the exact context, as KMS binds them, and
 * the version byte cannot be changed to make one layout read as the other.
 *
 * canonicalContext gives KMS semantics: pair order does not matter (pairs sorted by the
 * UTF-8 bytes of their key), absent and empty contexts are the same, and every key and value
 * is length-prefixed so that {a: 'bc'} and {ab: 'c'} differ:
 *
 *   u32be pairCount, then per pair: u32be keyLength, key (UTF-8), u32be valueLength, value (UTF-8)
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { DATA_KEY_BYTES, type EncryptionContext } from './provider.js';

/** The version new wraps use. */
export const WRAP_VERSION = 0x02;
export const LEGACY_WRAP_VERSION = 0x01;
const KEY_ID_BYTES = 16;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const SALT_BYTES = 32;
const WRAP_KEY_BYTES = 32;
const HEADER_BYTES = 1 + KEY_ID_BYTES;
const HKDF_INFO = Buffer.from('envelope-service/local-wrap/v2', 'utf8');

/** Where each field of a version's blob is: the nonce is the IV (v1) or the salt (v2). */
interface Layout {
  readonly nonceBytes: number;
  readonly ciphertextOffset: number;
  readonly tagOffset: number;
  readonly totalBytes: number;
}

function layout(nonceBytes: number): Layout {
  const ciphertextOffset = HEADER_BYTES + nonceBytes;
  const tagOffset = ciphertextOffset + DATA_KEY_BYTES;
  return { nonceBytes, ciphertextOffset, tagOffset, totalBytes: tagOffset + TAG_BYTES };
}

const LAYOUTS: ReadonlyMap<number, Layout> = new Map([
  [LEGACY_WRAP_VERSION, layout(IV_BYTES)],
  [WRAP_VERSION, layout(SALT_BYTES)],
]);
const CURRENT = LAYOUTS.get(WRAP_VERSION) as Layout;
/** Length of a blob made by wrapDataKey (the current version). */
export const WRAPPED_KEY_BYTES = CURRENT.totalBytes;
export const LEGACY_WRAPPED_KEY_BYTES = (LAYOUTS.get(LEGACY_WRAP_VERSION) as Layout).totalBytes;

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

/** Wraps a 32-byte data key under a key derived from `masterKey` (32 bytes) for this wrap alone. */
export function wrapDataKey(masterKey: Buffer, keyUuid: string, dataKey: Buffer, context: EncryptionContext): Buffer {
  if (dataKey.length !== DATA_KEY_BYTES) throw new RangeError('data key must be 32 bytes');
  const blob = Buffer.alloc(CURRENT.totalBytes);
  blob[0] = WRAP_VERSION;
  blob.write(keyUuid.replaceAll('-', ''), 1, KEY_ID_BYTES, 'hex');
  randomBytes(SALT_BYTES).copy(blob, HEADER_BYTES);
  const { key, iv } = cipherInputs(masterKey, blob, CURRENT);
  try {
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(aadFor(blob, context));
    const encrypted = cipher.update(dataKey);
    cipher.final();
    encrypted.copy(blob, CURRENT.ciphertextOffset);
    cipher.getAuthTag().copy(blob, CURRENT.tagOffset);
  } finally {
    if (key !== masterKey) key.fill(0);
  }
  return blob;
}

/**
 * Reads the key id from a blob, or undefined if the blob is not one of ours. Only the version
 * byte and the total length are looked at before anything else, so no input of any length can
 * make this allocate more than a 36-character id or throw.
 */
export function wrappedKeyId(blob: Uint8Array): string | undefined {
  const version = blob[0];
  if (version === undefined || LAYOUTS.get(version)?.totalBytes !== blob.length) return undefined;
  const hex = Buffer.from(blob.buffer, blob.byteOffset + 1, KEY_ID_BYTES).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Unwraps a blob already checked by `wrappedKeyId`. Returns the data key (caller owns and
 * zeroes it) or undefined when authentication fails: wrong key, wrong context, tampering.
 */
export function unwrapDataKey(masterKey: Buffer, blob: Uint8Array, context: EncryptionContext): Buffer | undefined {
  const version = blob[0];
  const fields = version === undefined ? undefined : LAYOUTS.get(version);
  if (!fields || blob.length !== fields.totalBytes) return undefined;
  const bytes = Buffer.from(blob.buffer, blob.byteOffset, fields.totalBytes);
  const { key, iv } = cipherInputs(masterKey, bytes, fields);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(aadFor(bytes, context));
    decipher.setAuthTag(bytes.subarray(fields.tagOffset, fields.totalBytes));
    // GCM releases plaintext before the tag is checked; it is zeroed if the check fails.
    const dataKey = decipher.update(bytes.subarray(fields.ciphertextOffset, fields.tagOffset));
    try {
      decipher.final();
    } catch {
      dataKey.fill(0);
      return undefined;
    }
    return dataKey;
  } finally {
    if (key !== masterKey) key.fill(0);
  }
}

/** v1: the master key and the stored IV. v2: key and IV derived from the master key and the salt. */
function cipherInputs(masterKey: Buffer, blob: Buffer, fields: Layout): { key: Buffer; iv: Buffer } {
  const nonce = blob.subarray(HEADER_BYTES, HEADER_BYTES + fields.nonceBytes);
  if (blob[0] === LEGACY_WRAP_VERSION) return { key: masterKey, iv: nonce };
  return deriveWrapKey(masterKey, nonce, blob.subarray(0, HEADER_BYTES));
}

/** HKDF-SHA-256 bound to the version and key id; exported for the format test. */
export function deriveWrapKey(masterKey: Buffer, salt: Uint8Array, header: Uint8Array): { key: Buffer; iv: Buffer } {
  const okm = Buffer.from(hkdfSync('sha256', masterKey, salt, Buffer.concat([HKDF_INFO, header]), WRAP_KEY_BYTES + IV_BYTES));
  return { key: okm.subarray(0, WRAP_KEY_BYTES), iv: okm.subarray(WRAP_KEY_BYTES) };
}

function aadFor(blob: Buffer, context: EncryptionContext): Buffer {
  return Buffer.concat([blob.subarray(0, HEADER_BYTES), canonicalContext(context)]);
}
