/**
 * Writes test/fixtures/vectors/v1-keyset.json and stream-v2-keyset.json: message (format 1)
 * and stream (format 2) ciphertexts with the key-set key block (docs/FORMAT.md, "Key sets"),
 * made with fixed data keys, so that test/format/keyset-vectors.test.ts checks that this build
 * and a decoder written from docs/FORMAT.md still open them. Run once when the key-set block
 * was introduced; never regenerated (that would hide a format change). The single-key vectors
 * (v1.json, stream-v2.json) are not touched: that block is unchanged.
 */
import { writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { encodeEnvelopePrefix, toCiphertextString } from '../src/format/format.js';
import { sealMessage } from '../src/format/message-crypto.js';
import { deriveStreamKeyMaterial, StreamSealer } from '../src/format/stream-crypto.js';
import { encodeStreamHeader } from '../src/format/stream-format.js';
import type { KeySetVector } from '../test/fixtures/vectors/keyset-vector.js';

const keyA = 'arn:aws:kms:eu-west-1:111122223333:key/mrk-1f2e3d4c5b6a49788796a5b4c3d2e1f0';
const keyB = 'arn:aws:kms:us-east-1:111122223333:key/mrk-1f2e3d4c5b6a49788796a5b4c3d2e1f0';
const keyC = 'arn:aws:kms:ap-southeast-2:444455556666:key/0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9';
const bytes = (length: number) => Buffer.from(Array.from({ length }, (_, i) => (i * 7) % 256)).toString('hex');
const hex = (value: string) => Buffer.from(value, 'hex');
const blockOf = (vector: Omit<KeySetVector, 'ciphertext'>) => ({
  keySet: vector.keySet,
  wrappedKeys: vector.wrappedKeys.map((entry) => ({ keyArn: entry.keyArn, wrappedKey: hex(entry.wrappedKey) })),
});

const messages: Omit<KeySetVector, 'ciphertext'>[] = [
  { description: 'one key (a set reduced to one), empty plaintext, no context', dataKey: '20'.repeat(32), keySet: 'solo', wrappedKeys: [{ keyArn: keyA, wrappedKey: 'a1'.repeat(24) }], context: {}, aad: null, plaintext: '' },
  { description: 'two multi-Region keys, text with context', dataKey: '21'.repeat(32), keySet: 'payments', wrappedKeys: [{ keyArn: keyA, wrappedKey: 'b1'.repeat(184) }, { keyArn: keyB, wrappedKey: 'b2'.repeat(184) }], context: { tenant: 'a', purpose: 'billing' }, aad: null, plaintext: Buffer.from('hello key sets').toString('hex') },
  { description: 'three keys in two accounts, unicode context and aad', dataKey: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', keySet: 'archive.eu-us_ap', wrappedKeys: [{ keyArn: keyB, wrappedKey: 'c1'.repeat(40) }, { keyArn: keyA, wrappedKey: 'c2'.repeat(41) }, { keyArn: keyC, wrappedKey: 'c3'.repeat(42) }], context: { tenant: 'b', 'é-unicode': 'ü✓' }, aad: Buffer.from('order-42').toString('hex'), plaintext: bytes(300) },
];

const v1 = messages.map((vector) => {
  const envelope = sealMessage(hex(vector.dataKey), encodeEnvelopePrefix(blockOf(vector), vector.context), hex(vector.plaintext), vector.aad === null ? undefined : hex(vector.aad));
  return { ...vector, ciphertext: toCiphertextString(envelope) };
});

const streams: Omit<KeySetVector, 'ciphertext'>[] = [
  { description: 'two keys, exactly one full segment, with context', dataKey: '31'.repeat(32), keySet: 'backups', wrappedKeys: [{ keyArn: keyA, wrappedKey: 'd1'.repeat(184) }, { keyArn: keyB, wrappedKey: 'd2'.repeat(184) }], context: { tenant: 'a', purpose: 'backup' }, aad: null, messageId: '41'.repeat(32), segmentSize: 1024, plaintext: bytes(1024) },
  { description: 'three keys, three segments (1024, 1024, 452), unicode context and aad', dataKey: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', keySet: 'archive.eu-us_ap', wrappedKeys: [{ keyArn: keyC, wrappedKey: 'e1'.repeat(30) }, { keyArn: keyA, wrappedKey: 'e2'.repeat(31) }, { keyArn: keyB, wrappedKey: 'e3'.repeat(32) }], context: { tenant: 'b', 'é-unicode': 'ü✓' }, aad: Buffer.from('export-42').toString('hex'), messageId: '42'.repeat(32), segmentSize: 1024, plaintext: bytes(2500) },
];

const v2: KeySetVector[] = [];
for (const vector of streams) {
  const material = deriveStreamKeyMaterial(hex(vector.dataKey), hex(vector.messageId!));
  const { header, authenticatedHeader } = encodeStreamHeader(blockOf(vector), vector.context, hex(vector.messageId!), material.subarray(32), vector.segmentSize!);
  const sealer = new StreamSealer({
    header,
    authenticatedHeader,
    streamKey: Buffer.from(material.subarray(0, 32)),
    segmentSize: vector.segmentSize!,
    aad: vector.aad === null ? undefined : hex(vector.aad),
    maxBytes: Number.MAX_SAFE_INTEGER,
  });
  const ciphertext = await buffer(Readable.from([hex(vector.plaintext)]).pipe(sealer));
  v2.push({ ...vector, ciphertext: ciphertext.toString('hex') });
}

const note = 'hex-encoded bytes (the v1 ciphertext as its ev1: string); key-set key block, see docs/FORMAT.md "Key sets"';
writeFileSync(new URL('../test/fixtures/vectors/v1-keyset.json', import.meta.url), `${JSON.stringify({ format: 'ev1 key set', note, vectors: v1 }, null, 2)}\n`);
writeFileSync(new URL('../test/fixtures/vectors/stream-v2-keyset.json', import.meta.url), `${JSON.stringify({ format: 'stream v2 key set', note, vectors: v2 }, null, 2)}\n`);
console.log(`wrote ${v1.length} + ${v2.length} key-set vectors`);
