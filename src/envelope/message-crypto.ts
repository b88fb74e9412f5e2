/**
 * Per-message cryptography for format v1: key derivation with commitment, seal and open.
 *
 * Each message gets a fresh 256-bit message id; HKDF-SHA-512(dataKey, salt = messageId)
 * yields 64 bytes: the first 32 are the message's AES-256-GCM key, the last 32 the key
 * commitment stored in the header. Because every message has its own key, the 2^32 limit on
 * random 96-bit IVs under one key no longer applies to the data key, and a ciphertext can only
 * ever be opened under the one data key it commits to (no "invisible salamander" messages).
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomFillSync, timingSafeEqual } from 'node:crypto';
import { EnvelopeError } from './errors.js';
import {
  COMMITMENT_BYTES,
  IV_BYTES,
  MESSAGE_ID_BYTES,
  TAG_BYTES,
  envelopeSize,
  type EnvelopePrefix,
  type ParsedEnvelope,
} from './format.js';

const KEY_BYTES = 32;
/** Binds derived keys to this format and algorithm (version 1, algorithm 1). */
export const HKDF_INFO = Buffer.from('ev1 AES-256-GCM HKDF-SHA-512 key+commitment', 'ascii');

/**
 * Returns 64 bytes: [0, 32) the message key, [32, 64) the commitment. The caller zeroes it.
 */
export function deriveMessageKeyMaterial(dataKey: Buffer, messageId: Buffer): Buffer {
  if (dataKey.length !== KEY_BYTES) throw new RangeError('data key must be 32 bytes');
  return Buffer.from(hkdfSync('sha512', dataKey, messageId, HKDF_INFO, KEY_BYTES + COMMITMENT_BYTES));
}

/**
 * Encrypts one message under a data key, returning the whole binary envelope. `prefix` holds
 * the per-data-key serialisations (see format.ts).
 */
export function sealMessage(dataKey: Buffer, prefix: EnvelopePrefix, plaintext: Buffer, aad?: Buffer): Buffer {
  const out = Buffer.allocUnsafe(envelopeSize(prefix.prefix.length, plaintext.length));
  let at = prefix.prefix.copy(out, 0);
  const messageId = randomFillSync(out.subarray(at, at + MESSAGE_ID_BYTES));
  at += MESSAGE_ID_BYTES;
  const material = deriveMessageKeyMaterial(dataKey, messageId);
  try {
    at += material.copy(out, at, KEY_BYTES);
    const header = Buffer.concat([prefix.authenticatedPrefix, out.subarray(at - MESSAGE_ID_BYTES - COMMITMENT_BYTES, at)]);
    const iv = randomFillSync(out.subarray(at, at + IV_BYTES));
    at += IV_BYTES;
    const cipher = createCipheriv('aes-256-gcm', material.subarray(0, KEY_BYTES), iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(associatedData(header, aad));
    at += cipher.update(plaintext).copy(out, at);
    cipher.final();
    cipher.getAuthTag().copy(out, at);
    return out;
  } finally {
    material.fill(0);
  }
}

/**
 * Decrypts one message. Checks the key commitment first (constant time), then GCM's tag; on
 * any failure no plaintext leaves this function (a partial buffer is zeroed).
 */
export function openMessage(dataKey: Buffer, envelope: ParsedEnvelope, aad?: Buffer): Buffer {
  const material = deriveMessageKeyMaterial(dataKey, envelope.messageId);
  try {
    if (!timingSafeEqual(material.subarray(KEY_BYTES), envelope.commitment)) {
      throw new EnvelopeError('KeyCommitmentMismatch', 'ciphertext does not commit to its data key');
    }
    const decipher = createDecipheriv('aes-256-gcm', material.subarray(0, KEY_BYTES), envelope.iv, {
      authTagLength: TAG_BYTES,
    });
    decipher.setAuthTag(envelope.tag);
    decipher.setAAD(associatedData(envelope.authenticatedHeader, aad));
    const plaintext = decipher.update(envelope.body);
    try {
      decipher.final();
    } catch {
      plaintext.fill(0);
      throw new EnvelopeError('AuthenticationFailed', 'ciphertext failed authentication (tampered, or wrong aad)');
    }
    return plaintext;
  } finally {
    material.fill(0);
  }
}

/** The header is self-delimiting, so header || aad is unambiguous. */
function associatedData(header: Buffer, aad: Buffer | undefined): Buffer {
  return aad && aad.length > 0 ? Buffer.concat([header, aad]) : header;
}
