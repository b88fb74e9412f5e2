/**
 * Ciphertext format v1: the byte layout, nothing else (no crypto here).
 *
 *   "ev1:" base64url(
 *     u8  formatVersion = 1
 *     u8  algorithm     = 1 (AES-256-GCM, HKDF-SHA-512, key commitment)
 *     -- key block: the only part a rewrap changes --
 *     u16 keyArnLength,      keyArn (UTF-8)
 *     u16 wrappedKeyLength,  wrappedKey (the KMS CiphertextBlob)
 *     -- sealed part: never changes once written --
 *     u16 contextPairCount,  { u16 keyLength, key, u16 valueLength, value } sorted by key bytes
 *     32  messageId
 *     32  commitment
 *     12  iv
 *     ..  body
 *     16  tag )
 *
 * Integers are big-endian. GCM's associated data is formatVersion || algorithm || context
 * block || messageId || commitment || the caller's aad. The key block is bound by the key
 * commitment instead (a different wrapped key that yields another data key fails the
 * commitment check), which is what lets rewrap replace it without touching the payload.
 * docs/FORMAT.md documents this byte by byte; test/fixtures/vectors pin it.
 *
 * Everything up to the context block stays the same for every message under one cached data
 * key, so the service serialises it once per data key (EnvelopePrefix) and writes only the
 * per-message fields.
 */
import type { EncryptionContext } from '../kms/provider.js';
import { contextProblem, sortedContextEntries } from './context.js';
import { EnvelopeError } from './errors.js';
import { ENVELOPE_LIMITS } from './limits.js';

export const CIPHERTEXT_PREFIX = 'ev1:';
export const FORMAT_VERSION = 1;
export const ALGORITHM_AES256GCM_HKDF_SHA512_COMMIT = 1;
export const MESSAGE_ID_BYTES = 32;
export const COMMITMENT_BYTES = 32;
export const IV_BYTES = 12;
export const TAG_BYTES = 16;

/** The smallest possible envelope: 1-byte ARN, 1-byte wrapped key, no context, empty body. */
const MIN_ENVELOPE_BYTES = 2 + (2 + 1) + (2 + 1) + 2 + MESSAGE_ID_BYTES + COMMITMENT_BYTES + IV_BYTES + TAG_BYTES;

export interface KeyBlockFields {
  keyArn: string;
  wrappedKey: Buffer;
}

export interface ParsedEnvelope {
  keyArn: string;
  wrappedKey: Buffer;
  context: EncryptionContext;
  messageId: Buffer;
  commitment: Buffer;
  iv: Buffer;
  body: Buffer;
  tag: Buffer;
  /** formatVersion || algorithm || context block || messageId || commitment (GCM AAD prefix). */
  authenticatedHeader: Buffer;
  /** From the context block to the end: what a rewrap carries over byte for byte. */
  sealedPart: Buffer;
}

/** The per-data-key serialisations: computed once per cached key, reused per message. */
export interface EnvelopePrefix {
  /** formatVersion || algorithm || key block || context block */
  prefix: Buffer;
  /** formatVersion || algorithm || context block */
  authenticatedPrefix: Buffer;
}

const VERSION_BYTES = Buffer.from([FORMAT_VERSION, ALGORITHM_AES256GCM_HKDF_SHA512_COMMIT]);

export function encodeEnvelopePrefix(keyBlock: KeyBlockFields, context: EncryptionContext): EnvelopePrefix {
  const keyBytes = encodeKeyBlock(keyBlock);
  const contextBytes = encodeContextBlock(context);
  return {
    prefix: Buffer.concat([VERSION_BYTES, keyBytes, contextBytes]),
    authenticatedPrefix: Buffer.concat([VERSION_BYTES, contextBytes]),
  };
}

/** formatVersion || algorithm || key block: what a rewrap puts in front of the sealed part. */
export function encodeRewrapped(keyBlock: KeyBlockFields, sealedPart: Buffer): Buffer {
  return Buffer.concat([VERSION_BYTES, encodeKeyBlock(keyBlock), sealedPart]);
}

export function encodeKeyBlock({ keyArn, wrappedKey }: KeyBlockFields): Buffer {
  const arn = Buffer.from(keyArn, 'utf8');
  if (arn.length === 0 || arn.length > ENVELOPE_LIMITS.maxKeyArnBytes) throw new RangeError('key ARN length out of bounds');
  if (wrappedKey.length === 0 || wrappedKey.length > ENVELOPE_LIMITS.maxWrappedKeyBytes) {
    throw new RangeError('wrapped key length out of bounds');
  }
  const out = Buffer.allocUnsafe(4 + arn.length + wrappedKey.length);
  writeBlock(out, writeBlock(out, 0, arn), wrappedKey);
  return out;
}

export function encodeContextBlock(context: EncryptionContext): Buffer {
  const problem = contextProblem(context);
  if (problem) throw new RangeError(problem);
  const pairs = sortedContextEntries(context).map(([key, value]) => [Buffer.from(key, 'utf8'), Buffer.from(value, 'utf8')] as const);
  const size = pairs.reduce((sum, [key, value]) => sum + 4 + key.length + value.length, 2);
  const out = Buffer.allocUnsafe(size);
  let at = out.writeUInt16BE(pairs.length, 0);
  for (const [key, value] of pairs) at = writeBlock(out, writeBlock(out, at, key), value);
  return out;
}

function writeBlock(out: Buffer, at: number, block: Buffer): number {
  const next = out.writeUInt16BE(block.length, at);
  return next + block.copy(out, next);
}

/** Total binary size of an envelope for a given prefix and body length. */
export function envelopeSize(prefixLength: number, bodyLength: number): number {
  return prefixLength + MESSAGE_ID_BYTES + COMMITMENT_BYTES + IV_BYTES + bodyLength + TAG_BYTES;
}

export function toCiphertextString(envelope: Buffer): string {
  return CIPHERTEXT_PREFIX + envelope.toString('base64url');
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const ANY_VERSION_PREFIX = /^ev\d+:/;

/**
 * Parses a ciphertext string. Every length is checked against what remains (and against
 * ENVELOPE_LIMITS) before it is used; the returned buffers are views into one decoded buffer.
 */
export function parseCiphertext(text: string): ParsedEnvelope {
  if (!text.startsWith(CIPHERTEXT_PREFIX)) {
    throw ANY_VERSION_PREFIX.test(text)
      ? new EnvelopeError('UnsupportedFormat', 'ciphertext version is not supported by this service')
      : new EnvelopeError('UnsupportedFormat', 'not a ciphertext produced by this service (missing "ev1:" prefix)');
  }
  const encoded = text.slice(CIPHERTEXT_PREFIX.length);
  if (!BASE64URL.test(encoded) || encoded.length % 4 === 1) {
    throw new EnvelopeError('MalformedCiphertext', 'ciphertext is not valid base64url');
  }
  return parseEnvelope(Buffer.from(encoded, 'base64url'));
}

export function parseEnvelope(bytes: Buffer): ParsedEnvelope {
  if (bytes.length < MIN_ENVELOPE_BYTES) throw malformed('ciphertext is truncated');
  const reader = new BoundedReader(bytes);
  const version = reader.u8();
  const algorithm = reader.u8();
  if (version !== FORMAT_VERSION || algorithm !== ALGORITHM_AES256GCM_HKDF_SHA512_COMMIT) {
    throw new EnvelopeError('UnsupportedFormat', 'ciphertext format version or algorithm is not supported');
  }
  const keyArn = utf8(reader.block(1, ENVELOPE_LIMITS.maxKeyArnBytes, 'key ARN'));
  const wrappedKey = reader.block(1, ENVELOPE_LIMITS.maxWrappedKeyBytes, 'wrapped key');
  const sealedStart = reader.offset;
  const context = readContext(reader);
  const messageId = reader.fixed(MESSAGE_ID_BYTES, 'message id');
  const commitment = reader.fixed(COMMITMENT_BYTES, 'commitment');
  const authenticatedHeader = Buffer.concat([bytes.subarray(0, 2), bytes.subarray(sealedStart, reader.offset)]);
  const iv = reader.fixed(IV_BYTES, 'iv');
  const bodyLength = reader.remaining - TAG_BYTES;
  if (bodyLength < 0) throw malformed('ciphertext is truncated');
  const body = reader.fixed(bodyLength, 'body');
  const tag = reader.fixed(TAG_BYTES, 'tag');
  const sealedPart = bytes.subarray(sealedStart);
  return { keyArn, wrappedKey, context, messageId, commitment, iv, body, tag, authenticatedHeader, sealedPart };
}

export function readContext(reader: BoundedReader): EncryptionContext {
  const count = reader.u16();
  if (count > ENVELOPE_LIMITS.maxContextPairs) throw malformed('context has too many entries');
  const context: Record<string, string> = Object.create(null) as Record<string, string>;
  let total = 0;
  let previousKey: Buffer | undefined;
  for (let i = 0; i < count; i++) {
    const key = reader.block(1, ENVELOPE_LIMITS.maxContextKeyBytes, 'context key');
    const value = reader.block(0, ENVELOPE_LIMITS.maxContextValueBytes, 'context value');
    total += key.length + value.length;
    if (total > ENVELOPE_LIMITS.maxContextTotalBytes) throw malformed('context is too large');
    // One context has exactly one encoding: keys strictly ascending, so no duplicates.
    if (previousKey && Buffer.compare(previousKey, key) >= 0) throw malformed('context is not canonical');
    previousKey = key;
    context[utf8(key)] = utf8(value);
  }
  return context;
}

// fatal: bytes that are not valid UTF-8 would not round-trip through JSON or KMS.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function utf8(bytes: Buffer): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw malformed('context is not valid UTF-8');
  }
}

function malformed(detail: string): EnvelopeError {
  return new EnvelopeError('MalformedCiphertext', detail);
}

/** A cursor that refuses to read past the end: every read is checked before it slices. */
export class BoundedReader {
  offset = 0;
  constructor(private readonly bytes: Buffer) {}

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  u8(): number {
    this.need(1, 'header');
    return this.bytes.readUInt8(this.offset++);
  }

  u16(): number {
    this.need(2, 'header');
    const value = this.bytes.readUInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  block(min: number, max: number, what: string): Buffer {
    const length = this.u16();
    if (length < min || length > max) throw malformed(`${what} length out of bounds`);
    return this.fixed(length, what);
  }

  fixed(length: number, what: string): Buffer {
    this.need(length, what);
    const view = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return view;
  }

  private need(length: number, what: string): void {
    if (length > this.remaining) throw malformed(`ciphertext is truncated (${what})`);
  }
}
