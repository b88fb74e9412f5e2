/**
 * Streaming ciphertext format (format version 2): the header's byte layout and the segment
 * arithmetic, no crypto here (stream-crypto.ts). docs/FORMAT.md documents it byte by byte.
 *
 *   u8  formatVersion = 2
 *   u8  algorithm     = 2 (AES-256-GCM STREAM, HKDF-SHA-512, key commitment)
 *   -- key block, as in v1 (the single-key block, or the key-set block) --
 *   u16 keyArnLength, keyArn;  u16 wrappedKeyLength, wrappedKey
 *   -- authenticated header --
 *   context block (as in v1), 32 messageId, 32 commitment, u32 segmentSize
 *   -- segments: each segmentSize plaintext bytes (the last one 1..segmentSize, or 0 when
 *      the whole plaintext is empty) sealed with AES-256-GCM, ciphertext || 16-byte tag --
 *
 * The segment nonce is 7 zero bytes || u32 segment index || u8 last-segment flag (the STREAM
 * construction): a segment moved, dropped, repeated, or a stream cut or extended fails its tag.
 */
import type { EncryptionContext } from '../kms/provider.js';
import { EnvelopeError } from './errors.js';
import {
  BoundedReader,
  COMMITMENT_BYTES,
  MESSAGE_ID_BYTES,
  TAG_BYTES,
  encodeAnyKeyBlock,
  encodeContextBlock,
  readContext,
  readKeyBlock,
  type KeyBlock,
  type KeyBlockFields,
} from './format.js';
import { ENVELOPE_LIMITS } from './limits.js';

export const STREAM_FORMAT_VERSION = 2;
export const ALGORITHM_AES256GCM_STREAM_HKDF_SHA512_COMMIT = 2;
export const SEGMENT_SIZE_BYTES = 4;
export const MIN_SEGMENT_SIZE = 1024;
export const MAX_SEGMENT_SIZE = 16 * 1024 * 1024;
/** The segment size this service writes (docs/FORMAT.md says why). */
export const DEFAULT_SEGMENT_SIZE = 64 * 1024;
/** Segment indexes are u32: 2^32 segments. */
export const MAX_SEGMENTS = 2 ** 32;

/**
 * The longest header the limits allow: with this many bytes (or the whole stream, if shorter)
 * in hand, a header either parses or never will.
 */
export const MAX_STREAM_HEADER_BYTES =
  2 +
  Math.max(2 + ENVELOPE_LIMITS.maxKeyArnBytes + 2 + ENVELOPE_LIMITS.maxWrappedKeyBytes, ENVELOPE_LIMITS.maxKeySetBlockBytes) +
  2 +
  ENVELOPE_LIMITS.maxContextPairs * 4 +
  ENVELOPE_LIMITS.maxContextTotalBytes +
  MESSAGE_ID_BYTES +
  COMMITMENT_BYTES +
  SEGMENT_SIZE_BYTES;

export interface StreamHeader {
  /** The first wrapped key's ARN (the only one of a single-key block). */
  keyArn: string;
  wrappedKey: Buffer;
  /** Every wrapped key, in the order stored (copies, not views). */
  wrappedKeys: KeyBlockFields[];
  /** The key set's name for a key-set block. */
  keySet?: string;
  context: EncryptionContext;
  messageId: Buffer;
  commitment: Buffer;
  segmentSize: number;
  /** formatVersion || algorithm || context block || messageId || commitment || segmentSize: every segment's AAD prefix. */
  authenticatedHeader: Buffer;
  /** Bytes the header takes at the start of the stream. */
  length: number;
}

const VERSION_BYTES = Buffer.from([STREAM_FORMAT_VERSION, ALGORITHM_AES256GCM_STREAM_HKDF_SHA512_COMMIT]);

/** The header bytes and the authenticated header, for a key block, context, message id and commitment. */
export function encodeStreamHeader(
  keyBlock: KeyBlockFields | KeyBlock,
  context: EncryptionContext,
  messageId: Buffer,
  commitment: Buffer,
  segmentSize: number,
): { header: Buffer; authenticatedHeader: Buffer } {
  if (!Number.isInteger(segmentSize) || segmentSize < MIN_SEGMENT_SIZE || segmentSize > MAX_SEGMENT_SIZE) throw new RangeError('segment size out of bounds');
  const size = Buffer.allocUnsafe(SEGMENT_SIZE_BYTES);
  size.writeUInt32BE(segmentSize, 0);
  const contextBlock = encodeContextBlock(context);
  return {
    header: Buffer.concat([VERSION_BYTES, encodeAnyKeyBlock(keyBlock), contextBlock, messageId, commitment, size]),
    authenticatedHeader: Buffer.concat([VERSION_BYTES, contextBlock, messageId, commitment, size]),
  };
}

/**
 * Parses a stream header from the first bytes of a stream: `bytes` must hold at least
 * MAX_STREAM_HEADER_BYTES, or the whole stream (`complete`). Every length is checked first.
 */
export function parseStreamHeader(bytes: Buffer): StreamHeader {
  if (bytes.length < 2) throw malformed('stream is truncated (header)');
  if (bytes[0] !== STREAM_FORMAT_VERSION || bytes[1] !== ALGORITHM_AES256GCM_STREAM_HKDF_SHA512_COMMIT) {
    throw new EnvelopeError('UnsupportedFormat', 'not a stream ciphertext (format version 2, algorithm 2)');
  }
  const reader = new BoundedReader(bytes);
  reader.fixed(2, 'header');
  const keyBlock = readKeyBlock(reader);
  // Copies: `bytes` is the decoder's pending buffer, reused once the header is parsed.
  const wrappedKeys = keyBlock.wrappedKeys.map(({ keyArn, wrappedKey }) => ({ keyArn, wrappedKey: Buffer.from(wrappedKey) }));
  const { keyArn, wrappedKey } = wrappedKeys[0]!;
  const authenticatedStart = reader.offset;
  const context = readContext(reader);
  const messageId = Buffer.from(reader.fixed(MESSAGE_ID_BYTES, 'message id'));
  const commitment = Buffer.from(reader.fixed(COMMITMENT_BYTES, 'commitment'));
  const segmentSize = reader.fixed(SEGMENT_SIZE_BYTES, 'segment size').readUInt32BE(0);
  if (segmentSize < MIN_SEGMENT_SIZE || segmentSize > MAX_SEGMENT_SIZE) throw malformed('segment size out of bounds');
  const authenticatedHeader = Buffer.concat([VERSION_BYTES, bytes.subarray(authenticatedStart, reader.offset)]);
  return {
    keyArn,
    wrappedKey,
    wrappedKeys,
    ...(keyBlock.keySet !== undefined && { keySet: keyBlock.keySet }),
    context,
    messageId,
    commitment,
    segmentSize,
    authenticatedHeader,
    length: reader.offset,
  };
}

/** The 12-byte GCM nonce of segment `index`: 7 zero bytes, u32 index, last-segment flag. */
export function segmentNonce(index: number, last: boolean): Buffer {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_SEGMENTS) throw new EnvelopeError('MalformedCiphertext', 'stream has too many segments');
  const nonce = Buffer.alloc(12);
  nonce.writeUInt32BE(index, 7);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/** Size of a stream ciphertext for a plaintext of `plaintextBytes` (header excluded). */
export function segmentedSize(plaintextBytes: number, segmentSize: number): number {
  const segments = Math.max(1, Math.ceil(plaintextBytes / segmentSize));
  return plaintextBytes + segments * TAG_BYTES;
}

function malformed(detail: string): EnvelopeError {
  return new EnvelopeError('MalformedCiphertext', detail);
}
