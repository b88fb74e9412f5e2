/**
 * Per-message cryptography for format v1: key derivation with commitment, seal and open.
 *
 * Each message gets a fresh 256-bit message id; HKDF-SHA-512(dataKey, salt = messageId)
 * yields 64 bytes: the first 32 are the message's AES-256-GCM key, the last 32 the key
 * commitment stored in the header. Because every message has its own key, the 2^32 limit on
 * random 96-bit IVs under one key no longer applies to the data key, and a ciphertext can only
 * ever be opened under the one data key it commits to (no "invisible salamander" messages).
 */
import { createCipheriv, createDecipheriv, createHmac, randomFillSync, timingSafeEqual, type CipherGCM } from 'node:crypto';
import { EnvelopeError } from './errors.js';
import {
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

/** HKDF-Expand's input for the first (and only) output block: info || 0x01. */
const HKDF_EXPAND_BLOCK_1 = Buffer.concat([HKDF_INFO, Buffer.from([1])]);

/**
 * Returns 64 bytes: [0, 32) the message key, [32, 64) the commitment. The caller zeroes it.
 *
 * HKDF-SHA-512 (RFC 5869) written out with two HMACs: 64 bytes is exactly one SHA-512 output
 * block, so Extract is PRK = HMAC(salt = messageId, dataKey) and Expand is
 * T(1) = HMAC(PRK, info || 0x01). The bytes are those of
 * `hkdfSync('sha512', dataKey, messageId, HKDF_INFO, 64)` (the format v1 test vectors pin
 * them) at a fraction of the cost: hkdfSync builds KeyObjects and a crypto job per call, the
 * largest single cost of an in-process encrypt.
 */
export function deriveMessageKeyMaterial(dataKey: Buffer, messageId: Buffer): Buffer {
  if (dataKey.length !== KEY_BYTES) throw new RangeError('data key must be 32 bytes');
  const prk = createHmac('sha512', messageId).update(dataKey).digest();
  try {
    return createHmac('sha512', prk).update(HKDF_EXPAND_BLOCK_1).digest();
  } finally {
    prk.fill(0);
  }
}

/**
 * Message ids and IVs are public values (written in clear into every ciphertext) that must
 * never repeat, not secrets. They are copied out of a pool of CSPRNG output refilled 4 KiB
 * at a time (about 90 messages' worth), instead of two randomFillSync calls per message: the
 * same idea as Node's own randomUUID() entropy cache. Bytes handed out are zeroed in the pool
 * and never handed out again.
 */
const RANDOM_POOL = Buffer.allocUnsafeSlow(4096);
let randomPoolAt = RANDOM_POOL.length;

function fillRandom(target: Buffer): Buffer {
  if (target.length > RANDOM_POOL.length) return randomFillSync(target);
  if (randomPoolAt + target.length > RANDOM_POOL.length) {
    randomFillSync(RANDOM_POOL);
    randomPoolAt = 0;
  }
  const end = randomPoolAt + target.length;
  RANDOM_POOL.copy(target, 0, randomPoolAt, end);
  RANDOM_POOL.fill(0, randomPoolAt, end);
  randomPoolAt = end;
  return target;
}

/**
 * Encrypts one message under a data key, returning the whole binary envelope. `prefix` holds
 * the per-data-key serialisations (see format.ts).
 */
export function sealMessage(dataKey: Buffer, prefix: EnvelopePrefix, plaintext: Buffer, aad?: Buffer): Buffer {
  const out = Buffer.allocUnsafe(envelopeSize(prefix.prefix.length, plaintext.length));
  const idAt = prefix.prefix.copy(out, 0);
  const messageId = fillRandom(out.subarray(idAt, idAt + MESSAGE_ID_BYTES));
  const material = deriveMessageKeyMaterial(dataKey, messageId);
  try {
    const ivAt = idAt + MESSAGE_ID_BYTES + material.copy(out, idAt + MESSAGE_ID_BYTES, KEY_BYTES);
    const iv = fillRandom(out.subarray(ivAt, ivAt + IV_BYTES));
    const cipher = createCipheriv('aes-256-gcm', material.subarray(0, KEY_BYTES), iv, { authTagLength: TAG_BYTES });
    // The AAD is the authenticated header (authenticatedPrefix || messageId || commitment), then
    // the caller's aad (the header is self-delimiting, so header || aad is unambiguous). GCM
    // takes AAD in pieces: fed as they lie, not joined into a new buffer.
    cipher.setAAD(prefix.authenticatedPrefix);
    cipher.setAAD(out.subarray(idAt, ivAt));
    if (aad && aad.length > 0) cipher.setAAD(aad);
    const at = encryptInto(cipher, plaintext, out, ivAt + IV_BYTES);
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
    decipher.setAAD(envelope.authenticatedHeader); // then the caller's aad, as seal feeds it
    if (aad && aad.length > 0) decipher.setAAD(aad);
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

/**
 * seal() feeds large plaintexts to GCM in slices of this size. cipher.update() allocates its
 * output, which seal() then copies into the envelope: for a 1 MiB message that temporary is a
 * fresh 1 MiB allocation every time, while slice-sized temporaries are recycled by the
 * allocator and still in cache when copied. Same bytes either way (GCM is a stream mode).
 * open() does not slice: its update output IS the plaintext returned, so there is no
 * temporary to save, only a copy and a zeroing to add.
 */
const CIPHER_SLICE_BYTES = 64 * 1024;

/** Encrypts `input` into `out` at `at`; returns the offset after it. */
function encryptInto(cipher: CipherGCM, input: Buffer, out: Buffer, at: number): number {
  if (input.length <= CIPHER_SLICE_BYTES) return at + cipher.update(input).copy(out, at);
  for (let offset = 0; offset < input.length; offset += CIPHER_SLICE_BYTES) {
    at += cipher.update(input.subarray(offset, offset + CIPHER_SLICE_BYTES)).copy(out, at);
  }
  return at;
}
