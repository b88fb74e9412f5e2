/**
 * Writes test/fixtures/vectors/stream-v2.json: stream ciphertexts (format version 2) made with
 * fixed data keys and message ids, so that test/format/stream-vectors.test.ts can check that
 * this build and a decoder written from docs/FORMAT.md still open them byte for byte. Run once
 * when the format is introduced; never regenerated afterwards (that would hide a format change).
 * The segment size is the smallest allowed (1024) so that a vector spans several segments.
 */
import { writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { deriveStreamKeyMaterial, StreamSealer } from '../src/format/stream-crypto.js';
import { encodeStreamHeader } from '../src/format/stream-format.js';
import type { StreamVector } from '../test/fixtures/vectors/vector.js';

const keyArn = 'arn:aws:kms:eu-west-2:111122223333:key/3c74e818-3bfc-40a7-98ed-587a0d03d226';
const bytes = (length: number) => Buffer.from(Array.from({ length }, (_, i) => (i * 7) % 256)).toString('hex');
const cases: Omit<StreamVector, 'ciphertext'>[] = [
  { description: 'empty plaintext (one empty last segment), no context, no aad', dataKey: '00'.repeat(32), keyArn, wrappedKey: 'aa'.repeat(16), context: {}, aad: null, messageId: '10'.repeat(32), segmentSize: 1024, plaintext: '' },
  { description: 'exactly one full segment, with context', dataKey: '01'.repeat(32), keyArn, wrappedKey: 'bb'.repeat(40), context: { tenant: 'a', purpose: 'backup' }, aad: null, messageId: '11'.repeat(32), segmentSize: 1024, plaintext: bytes(1024) },
  { description: 'three segments (1024, 1024, 452), unicode context and aad', dataKey: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', keyArn, wrappedKey: 'cc'.repeat(184), context: { tenant: 'b', 'é-unicode': 'ü✓' }, aad: Buffer.from('export-42').toString('hex'), messageId: '12'.repeat(32), segmentSize: 1024, plaintext: bytes(2500) },
];

const vectors: StreamVector[] = [];
for (const vector of cases) {
  const material = deriveStreamKeyMaterial(Buffer.from(vector.dataKey, 'hex'), Buffer.from(vector.messageId, 'hex'));
  const keyBlock = { keyArn: vector.keyArn, wrappedKey: Buffer.from(vector.wrappedKey, 'hex') };
  const { header, authenticatedHeader } = encodeStreamHeader(keyBlock, vector.context, Buffer.from(vector.messageId, 'hex'), material.subarray(32), vector.segmentSize);
  const sealer = new StreamSealer({
    header,
    authenticatedHeader,
    streamKey: Buffer.from(material.subarray(0, 32)),
    segmentSize: vector.segmentSize,
    aad: vector.aad === null ? undefined : Buffer.from(vector.aad, 'hex'),
    maxBytes: Number.MAX_SAFE_INTEGER,
  });
  const ciphertext = await buffer(Readable.from([Buffer.from(vector.plaintext, 'hex')]).pipe(sealer));
  vectors.push({ ...vector, ciphertext: ciphertext.toString('hex') });
}

const out = new URL('../test/fixtures/vectors/stream-v2.json', import.meta.url);
writeFileSync(out, `${JSON.stringify({ format: 'stream v2', note: 'hex-encoded bytes; see docs/FORMAT.md', vectors }, null, 2)}\n`);
console.log(`wrote ${vectors.length} vectors to ${out.pathname}`);
