/**
 * Ciphertext format v1: the byte layout, nothing else (no crypto here).
 *
 *   "ev1:" base64url(
 *     u8  formatVersion = 1
 *     u8  algorithm     = 1 (AES-256-GCM, HKDF-SHA-512, key commitment)
 *     -- key block: the only part a rewrap changes --
 *     u16 keyArnLength,      keyArn (UTF-8)
 *     u16 wrappedKeyLength,  wrappedKey (the KMS CiphertextBlob)
 *     (or the key-set block, marked by a key ARN length of 0: u8 version = 1, u8 nameLength,
 *      set name, u8 count, count × the two fields above; see readKeyBlock)
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

/**
 * The key block as a whole: one wrapped key (the single-key block, no set), or a key set's
 * wrapped keys, each the same data key under another KMS key (the key-set block).
 */
export interface KeyBlock {
  /** The key set's name (without `keyset/`), present exactly for a key-set block. */
  keySet?: string;
  /** At least one; the single-key block has exactly one. */
  wrappedKeys: KeyBlockFields[];
}

/** Marks a key-set block where the single-key block has its key ARN length, which is never 0. */
export const KEY_SET_BLOCK_MARKER = 0;
export const KEY_SET_BLOCK_VERSION = 1;
/** Set names as the key-set block stores them (and KEY_SETS_FILE accepts). */
export const KEY_SET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface ParsedEnvelope {
  /** The first wrapped key's ARN (the only one of a single-key block). */
  keyArn: string;
  /** The first wrapped key (the only one of a single-key block). */
  wrappedKey: Buffer;
  /** Every wrapped key, in the order stored; one for a single-key block. */
  wrappedKeys: KeyBlockFields[];
  /** The key set's name for a key-set block; absent for a single-key block. */
  keySet?: string;
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

export function encodeEnvelopePrefix(keyBlock: KeyBlockFields | KeyBlock, context: EncryptionContext): EnvelopePrefix {
  const keyBytes = encodeAnyKeyBlock(keyBlock);
  const contextBytes = encodeContextBlock(context);
  return {
    prefix: Buffer.concat([VERSION_BYTES, keyBytes, contextBytes]),
    authenticatedPrefix: Buffer.concat([VERSION_BYTES, contextBytes]),
  };
}

/** formatVersion || algorithm || key block: what a rewrap puts in front of the sealed part. */
export function encodeRewrapped(keyBlock: KeyBlockFields | KeyBlock, sealedPart: Buffer): Buffer {
  return Buffer.concat([VERSION_BYTES, encodeAnyKeyBlock(keyBlock), sealedPart]);
}

/**
 * Either block: a single wrapped key without a set name is the single-key block (byte for
 * byte what it always was); anything with a set name is the key-set block.
 */
export function encodeAnyKeyBlock(block: KeyBlockFields | KeyBlock): Buffer {
  if (!('wrappedKeys' in block)) return encodeKeyBlock(block);
  if (block.keySet === undefined) {
    if (block.wrappedKeys.length !== 1) throw new RangeError('several wrapped keys need a key set name');
    return encodeKeyBlock(block.wrappedKeys[0]!);
  }
  return encodeKeySetBlock(block.keySet, block.wrappedKeys);
}

/**
 * The key-set block (docs/FORMAT.md, "Key sets"):
 *   u16 0 (marker) || u8 blockVersion = 1 || u8 nameLength || name (ASCII) || u8 count ||
 *   count × (u16 keyArnLength || keyArn || u16 wrappedKeyLength || wrappedKey)
 */
export function encodeKeySetBlock(keySet: string, wrappedKeys: readonly KeyBlockFields[]): Buffer {
  if (!KEY_SET_NAME.test(keySet)) throw new RangeError('key set name out of bounds');
  if (wrappedKeys.length === 0 || wrappedKeys.length > ENVELOPE_LIMITS.maxWrappedKeys) throw new RangeError('wrapped key count out of bounds');
  if (new Set(wrappedKeys.map((entry) => entry.keyArn)).size !== wrappedKeys.length) throw new RangeError('a key appears twice in the key block');
  const name = Buffer.from(keySet, 'ascii');
  const head = Buffer.from([0, KEY_SET_BLOCK_MARKER, KEY_SET_BLOCK_VERSION, name.length]);
  const block = Buffer.concat([head, name, Buffer.from([wrappedKeys.length]), ...wrappedKeys.map(encodeKeyBlock)]);
  if (block.length > ENVELOPE_LIMITS.maxKeySetBlockBytes) throw new RangeError('key block too large');
  return block;
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
  const keyBlock = readKeyBlock(reader);
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
  const first = keyBlock.wrappedKeys[0]!;
  return {
    keyArn: first.keyArn,
    wrappedKey: first.wrappedKey,
    wrappedKeys: keyBlock.wrappedKeys,
    ...(keyBlock.keySet !== undefined && { keySet: keyBlock.keySet }),
    context,
    messageId,
    commitment,
    iv,
    body,
    tag,
    authenticatedHeader,
    sealedPart,
  };
}

/**
 * Reads either key block. A key-set block's count and every length are checked against
 * ENVELOPE_LIMITS and the bytes present before anything is sliced; buffers are views.
 */
export function readKeyBlock(reader: BoundedReader): KeyBlock {
  const start = reader.offset;
  if (reader.peekU16() !== KEY_SET_BLOCK_MARKER) {
    const keyArn = utf8(reader.block(1, ENVELOPE_LIMITS.maxKeyArnBytes, 'key ARN'));
    const wrappedKey = reader.block(1, ENVELOPE_LIMITS.maxWrappedKeyBytes, 'wrapped key');
    return { wrappedKeys: [{ keyArn, wrappedKey }] };
  }
  reader.u16();
  if (reader.u8() !== KEY_SET_BLOCK_VERSION) throw new EnvelopeError('UnsupportedFormat', 'key block version is not supported by this service');
  const nameLength = reader.u8();
  if (nameLength < 1 || nameLength > ENVELOPE_LIMITS.maxKeySetNameBytes) throw malformed('key set name length out of bounds');
  const keySet = reader.fixed(nameLength, 'key set name').toString('latin1');
  if (!KEY_SET_NAME.test(keySet)) throw malformed('key set name is not valid');
  const count = reader.u8();
  if (count < 1 || count > ENVELOPE_LIMITS.maxWrappedKeys) throw malformed('wrapped key count out of bounds');
  const wrappedKeys: KeyBlockFields[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < count; i++) {
    const keyArn = utf8(reader.block(1, ENVELOPE_LIMITS.maxKeyArnBytes, 'key ARN'));
    const wrappedKey = reader.block(1, ENVELOPE_LIMITS.maxWrappedKeyBytes, 'wrapped key');
    if (reader.offset - start > ENVELOPE_LIMITS.maxKeySetBlockBytes) throw malformed('key block too large');
    // One entry per key: a second would only be a second chance for a forged wrapped key.
    if (seen.has(keyArn)) throw malformed('a key appears twice in the key block');
    seen.add(keyArn);
    wrappedKeys.push({ keyArn, wrappedKey });
  }
  return { keySet, wrappedKeys };
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
    throw malformed('ciphertext text field is not valid UTF-8');
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

  /** The next u16 without moving past it. */
  peekU16(): number {
    this.need(2, 'header');
    return this.bytes.readUInt16BE(this.offset);
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
