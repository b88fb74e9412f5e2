/**
 * Writes test/fixtures/vectors/v1.json: ciphertexts made with fixed data keys, so that
 * test/format/vectors.test.ts can check that this build still opens them byte for byte.
 * Run once when a new format version is introduced; never regenerate v1 (that would hide an
 * accidental format change, which is exactly what the vectors are there to catch).
 */
import { writeFileSync } from 'node:fs';
import { encodeEnvelopePrefix, toCiphertextString } from '../src/format/format.js';
import { sealMessage } from '../src/format/message-crypto.js';
import type { FormatVector as Vector } from '../test/fixtures/vectors/vector.js';


const keyArn = 'arn:aws:kms:eu-west-2:111122223333:key/3c74e818-3bfc-40a7-98ed-587a0d03d226';
const cases: Omit<Vector, 'ciphertext'>[] = [
  { description: 'empty plaintext, no context, no aad', dataKey: '00'.repeat(32), keyArn, wrappedKey: 'aa'.repeat(16), context: {}, aad: null, plaintext: '' },
  { description: 'short text with context', dataKey: '01'.repeat(32), keyArn, wrappedKey: 'bb'.repeat(40), context: { tenant: 'a', purpose: 'billing' }, aad: null, plaintext: Buffer.from('hello world').toString('hex') },
  { description: 'binary payload with context and aad', dataKey: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', keyArn, wrappedKey: 'cc'.repeat(184), context: { tenant: 'b', 'é-unicode': 'ü✓' }, aad: Buffer.from('order-42').toString('hex'), plaintext: Buffer.from(Array.from({ length: 300 }, (_, i) => i % 256)).toString('hex') },
];

const vectors: Vector[] = cases.map((vector) => {
  const prefix = encodeEnvelopePrefix({ keyArn: vector.keyArn, wrappedKey: Buffer.from(vector.wrappedKey, 'hex') }, vector.context);
  const aad = vector.aad === null ? undefined : Buffer.from(vector.aad, 'hex');
  const envelope = sealMessage(Buffer.from(vector.dataKey, 'hex'), prefix, Buffer.from(vector.plaintext, 'hex'), aad);
  return { ...vector, ciphertext: toCiphertextString(envelope) };
});

const out = new URL('../test/fixtures/vectors/v1.json', import.meta.url);
writeFileSync(out, `${JSON.stringify({ format: 'ev1', note: 'hex-encoded bytes except ciphertext; see docs/FORMAT.md', vectors }, null, 2)}\n`);
console.log(`wrote ${vectors.length} vectors to ${out.pathname}`);
