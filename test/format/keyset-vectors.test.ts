/**
 * The key-set key block (docs/FORMAT.md, "Key sets") in message format 1 and stream format 2:
 * the committed vectors open in this build and in a decoder written from the document alone
 * (below), the block round-trips, and the single-key block is still written byte for byte as
 * before (its own vectors, v1.json and stream-v2.json, are unchanged).
 */
import { createDecipheriv, hkdfSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { encodeAnyKeyBlock, encodeKeyBlock, parseCiphertext } from '../../src/format/format.js';
import { openMessage } from '../../src/format/message-crypto.js';
import { StreamOpener, streamKeyFor } from '../../src/format/stream-crypto.js';
import type { KeySetVector } from '../fixtures/vectors/keyset-vector.js';

const load = (name: string) => (JSON.parse(readFileSync(new URL(`../fixtures/vectors/${name}`, import.meta.url), 'utf8')) as { vectors: KeySetVector[] }).vectors;
const messages = load('v1-keyset.json');
const streams = load('stream-v2-keyset.json');
const hex = (value: string) => Buffer.from(value, 'hex');

/** The key-set block read as docs/FORMAT.md describes it; returns the block and where it ends. */
function referenceKeyBlock(bytes: Buffer, at: number): { keySet: string; wrappedKeys: { keyArn: string; wrappedKey: string }[]; end: number } {
  if (bytes.readUInt16BE(at) !== 0) throw new Error('not a key-set block');
  if (bytes[at + 2] !== 1) throw new Error('unknown key block version');
  const nameLength = bytes[at + 3]!;
  const keySet = bytes.subarray(at + 4, at + 4 + nameLength).toString('ascii');
  let offset = at + 4 + nameLength;
  const count = bytes[offset++]!;
  const wrappedKeys = [];
  for (let i = 0; i < count; i++) {
    const arnLength = bytes.readUInt16BE(offset);
    const keyArn = bytes.subarray(offset + 2, offset + 2 + arnLength).toString('utf8');
    offset += 2 + arnLength;
    const wrappedLength = bytes.readUInt16BE(offset);
    const wrappedKey = bytes.subarray(offset + 2, offset + 2 + wrappedLength).toString('hex');
    offset += 2 + wrappedLength;
    wrappedKeys.push({ keyArn, wrappedKey });
  }
  return { keySet, wrappedKeys, end: offset };
}

/** A v1 message opened from docs/FORMAT.md alone: key-set block, context, HKDF, commitment, GCM. */
function referenceOpen(envelope: Buffer, dataKey: Buffer, aad: Buffer): Buffer {
  const { end: sealedStart } = referenceKeyBlock(envelope, 2);
  let offset = sealedStart;
  const pairs = envelope.readUInt16BE(offset);
  offset += 2;
  for (let i = 0; i < pairs * 2; i++) offset += 2 + envelope.readUInt16BE(offset);
  const messageId = envelope.subarray(offset, offset + 32);
  const commitment = envelope.subarray(offset + 32, offset + 64);
  const iv = envelope.subarray(offset + 64, offset + 76);
  const okm = Buffer.from(hkdfSync('sha512', dataKey, messageId, Buffer.from('ev1 AES-256-GCM HKDF-SHA-512 key+commitment', 'ascii'), 64));
  if (!okm.subarray(32).equals(commitment)) throw new Error('commitment mismatch');
  const decipher = createDecipheriv('aes-256-gcm', okm.subarray(0, 32), iv);
  decipher.setAAD(Buffer.concat([envelope.subarray(0, 2), envelope.subarray(sealedStart, offset + 64), aad]));
  decipher.setAuthTag(envelope.subarray(envelope.length - 16));
  return Buffer.concat([decipher.update(envelope.subarray(offset + 76, envelope.length - 16)), decipher.final()]);
}

const aadOf = (vector: KeySetVector) => (vector.aad === null ? Buffer.alloc(0) : hex(vector.aad));

describe('key-set vectors, message format 1', () => {
  it('has vectors', () => expect(messages.length).toBeGreaterThanOrEqual(3));
  for (const vector of messages) {
    it(`this build parses and opens: ${vector.description}`, () => {
      const parsed = parseCiphertext(vector.ciphertext);
      expect(parsed.keySet).toBe(vector.keySet);
      expect(parsed.wrappedKeys.map((entry) => ({ keyArn: entry.keyArn, wrappedKey: entry.wrappedKey.toString('hex') }))).toEqual(vector.wrappedKeys);
      expect(parsed.keyArn).toBe(vector.wrappedKeys[0]!.keyArn);
      expect(parsed.context).toEqual(vector.context);
      expect(openMessage(hex(vector.dataKey), parsed, aadOf(vector)).toString('hex')).toBe(vector.plaintext);
    });
    it(`the decoder from docs/FORMAT.md opens: ${vector.description}`, () => {
      const envelope = Buffer.from(vector.ciphertext.slice(4), 'base64url');
      expect(referenceKeyBlock(envelope, 2)).toMatchObject({ keySet: vector.keySet, wrappedKeys: vector.wrappedKeys });
      expect(referenceOpen(envelope, hex(vector.dataKey), aadOf(vector)).toString('hex')).toBe(vector.plaintext);
    });
  }
});

describe('key-set vectors, stream format 2', () => {
  it('has vectors', () => expect(streams.length).toBeGreaterThanOrEqual(2));
  for (const vector of streams) {
    it(`this build opens, and the block reads as documented: ${vector.description}`, async () => {
      const ciphertext = hex(vector.ciphertext);
      expect(referenceKeyBlock(ciphertext, 2)).toMatchObject({ keySet: vector.keySet, wrappedKeys: vector.wrappedKeys });
      const opener = new StreamOpener(Number.MAX_SAFE_INTEGER);
      const output = buffer(Readable.from([Buffer.from(ciphertext)]).pipe(opener));
      const header = await opener.header();
      expect(header.keySet).toBe(vector.keySet);
      expect(header.wrappedKeys.map((entry) => entry.keyArn)).toEqual(vector.wrappedKeys.map((entry) => entry.keyArn));
      opener.start({ streamKey: streamKeyFor(hex(vector.dataKey), header), aad: aadOf(vector) });
      expect((await output).toString('hex')).toBe(vector.plaintext);
    });
  }
});

describe('the key block writer', () => {
  const entry = { keyArn: 'arn:aws:kms:eu-west-2:111122223333:key/k', wrappedKey: Buffer.from('abc') };
  it('writes the single-key block unchanged when there is no set', () => {
    expect(encodeAnyKeyBlock({ wrappedKeys: [entry] }).equals(encodeKeyBlock(entry))).toBe(true);
    expect(encodeAnyKeyBlock(entry).equals(encodeKeyBlock(entry))).toBe(true);
  });
  it('refuses what the parser would refuse', () => {
    expect(() => encodeAnyKeyBlock({ keySet: 'bad name', wrappedKeys: [entry] })).toThrow(RangeError);
    expect(() => encodeAnyKeyBlock({ keySet: 'dup', wrappedKeys: [entry, entry] })).toThrow(RangeError);
    expect(() => encodeAnyKeyBlock({ keySet: 'many', wrappedKeys: Array.from({ length: 9 }, (_, i) => ({ ...entry, keyArn: `${entry.keyArn}${i}` })) })).toThrow(RangeError);
    expect(() => encodeAnyKeyBlock({ wrappedKeys: [entry, { ...entry, keyArn: 'x' }] })).toThrow(RangeError);
  });
});
