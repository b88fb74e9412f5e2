/**
 * The committed test vectors pin format v1: this build must open them byte for byte, and so
 * must an independent decoder written only from docs/FORMAT.md (below), which is what a third
 * party holding the document and KMS access would write.
 */
import { createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { encodeEnvelopePrefix, parseCiphertext, toCiphertextString } from '../../src/format/format.js';
import { openMessage, sealMessage } from '../../src/format/message-crypto.js';
import type { FormatVector as Vector } from '../fixtures/vectors/vector.js';


const { vectors } = JSON.parse(readFileSync(new URL('../fixtures/vectors/v1.json', import.meta.url), 'utf8')) as { vectors: Vector[] };
const hex = (value: string) => Buffer.from(value, 'hex');

describe('format v1 test vectors', () => {
  it('has vectors to check', () => {
    expect(vectors.length).toBeGreaterThanOrEqual(3);
  });

  for (const vector of vectors) {
    it(`this build opens: ${vector.description}`, () => {
      const envelope = parseCiphertext(vector.ciphertext);
      expect(envelope.keyArn).toBe(vector.keyArn);
      expect(envelope.wrappedKey.toString('hex')).toBe(vector.wrappedKey);
      expect({ ...envelope.context }).toEqual(vector.context);
      const plaintext = openMessage(hex(vector.dataKey), envelope, vector.aad === null ? undefined : hex(vector.aad));
      expect(plaintext.toString('hex')).toBe(vector.plaintext);
    });

    it(`the reference decoder from docs/FORMAT.md opens: ${vector.description}`, () => {
      expect(referenceDecrypt(vector.ciphertext, hex(vector.dataKey), vector.aad === null ? Buffer.alloc(0) : hex(vector.aad)).toString('hex')).toBe(
        vector.plaintext,
      );
    });
  }
});

describe('what this build seals, the reference decoder opens', () => {
  // seal() feeds bodies over 64 KiB to GCM in slices (message-crypto.ts); the sizes straddle
  // the slice boundary so a slicing mistake (a dropped, repeated or reordered slice) shows.
  const keyBlock = { keyArn: 'arn:aws:kms:eu-west-2:111122223333:key/slice-test', wrappedKey: randomBytes(184) };
  const prefix = encodeEnvelopePrefix(keyBlock, { tenant: 'acme' });
  for (const size of [0, 1, 65_535, 65_536, 65_537, 3 * 65_536 + 17, 1024 * 1024]) {
    it(`${size} bytes`, () => {
      const dataKey = randomBytes(32);
      const plaintext = randomBytes(size);
      const aad = randomBytes(size % 7);
      const text = toCiphertextString(sealMessage(dataKey, prefix, plaintext, aad));
      expect(referenceDecrypt(text, dataKey, aad).equals(plaintext)).toBe(true);
      expect(openMessage(dataKey, parseCiphertext(text), aad).equals(plaintext)).toBe(true);
    });
  }
});

/** Written from docs/FORMAT.md alone; deliberately shares no code with src/. */
function referenceDecrypt(text: string, dataKey: Buffer, aad: Buffer): Buffer {
  if (!text.startsWith('ev1:')) throw new Error('prefix');
  const bytes = Buffer.from(text.slice(4), 'base64url');
  let at = 0;
  const take = (n: number) => bytes.subarray(at, (at += n));
  const u16 = () => take(2).readUInt16BE(0);
  const version = take(2);
  if (version[0] !== 1 || version[1] !== 1) throw new Error('version');
  take(u16()); // key ARN
  take(u16()); // wrapped key
  const contextStart = at;
  const pairs = u16();
  for (let i = 0; i < pairs; i++) {
    take(u16());
    take(u16());
  }
  const messageId = take(32);
  const commitment = take(32);
  const authenticated = Buffer.concat([version, bytes.subarray(contextStart, at)]);
  const iv = take(12);
  const body = take(bytes.length - at - 16);
  const tag = take(16);
  const okm = Buffer.from(hkdfSync('sha512', dataKey, messageId, Buffer.from('ev1 AES-256-GCM HKDF-SHA-512 key+commitment'), 64));
  if (!okm.subarray(32).equals(commitment)) throw new Error('commitment');
  const decipher = createDecipheriv('aes-256-gcm', okm.subarray(0, 32), iv);
  decipher.setAuthTag(tag);
  decipher.setAAD(Buffer.concat([authenticated, aad]));
  return Buffer.concat([decipher.update(body), decipher.final()]);
}
