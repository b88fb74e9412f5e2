/**
 * The stream format (version 2): the committed vectors open byte for byte in this build and in
 * a decoder written only from docs/FORMAT.md; what this build writes, that decoder opens, at the
 * sizes around segment boundaries; and every change to a stream the document lists fails, in
 * both decoders, at several positions.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { deriveStreamKeyMaterial, SegmentAuthenticationError, StreamOpener, StreamSealer, streamKeyFor } from '../../src/format/stream-crypto.js';
import { encodeStreamHeader } from '../../src/format/stream-format.js';
import { referenceDecrypt } from '../fixtures/vectors/stream-reference.js';
import type { StreamVector } from '../fixtures/vectors/vector.js';

const { vectors } = JSON.parse(readFileSync(new URL('../fixtures/vectors/stream-v2.json', import.meta.url), 'utf8')) as { vectors: StreamVector[] };
const hex = (value: string) => Buffer.from(value, 'hex');
const aadOf = (vector: StreamVector) => (vector.aad === null ? Buffer.alloc(0) : hex(vector.aad));

/** Opens with this build's StreamOpener, feeding the bytes in chunks of `chunk`. */
async function buildOpen(ciphertext: Buffer, dataKey: Buffer, aad: Buffer, chunk = 7_000): Promise<Buffer> {
  const opener = new StreamOpener(Number.MAX_SAFE_INTEGER);
  const chunks: Buffer[] = [];
  for (let at = 0; at < ciphertext.length; at += chunk) chunks.push(Buffer.from(ciphertext.subarray(at, at + chunk)));
  const output = buffer(Readable.from(chunks).pipe(opener));
  const header = await opener.header();
  opener.start({ streamKey: streamKeyFor(dataKey, header), aad });
  return output;
}

async function buildSeal(plaintext: Buffer, dataKey: Buffer, aad: Buffer, segmentSize: number, context: Record<string, string> = {}): Promise<Buffer> {
  const messageId = randomBytes(32);
  const material = deriveStreamKeyMaterial(dataKey, messageId);
  const keyBlock = { keyArn: 'arn:aws:kms:eu-west-2:111122223333:key/stream-test', wrappedKey: randomBytes(64) };
  const { header, authenticatedHeader } = encodeStreamHeader(keyBlock, context, messageId, material.subarray(32), segmentSize);
  const sealer = new StreamSealer({ header, authenticatedHeader, streamKey: Buffer.from(material.subarray(0, 32)), segmentSize, aad, maxBytes: Number.MAX_SAFE_INTEGER });
  // The sealer zeroes the chunks it consumed: give it copies.
  const chunks: Buffer[] = [];
  for (let at = 0; at < plaintext.length; at += 5_000) chunks.push(Buffer.from(plaintext.subarray(at, at + 5_000)));
  return buffer(Readable.from(chunks).pipe(sealer));
}

describe('stream format test vectors', () => {
  it('has vectors to check', () => expect(vectors.length).toBeGreaterThanOrEqual(3));
  for (const vector of vectors) {
    it(`this build opens: ${vector.description}`, async () => {
      expect((await buildOpen(hex(vector.ciphertext), hex(vector.dataKey), aadOf(vector))).toString('hex')).toBe(vector.plaintext);
    });
    it(`the reference decoder from docs/FORMAT.md opens: ${vector.description}`, () => {
      const decoded = referenceDecrypt(hex(vector.ciphertext), hex(vector.dataKey), aadOf(vector));
      expect(decoded.keyArn).toBe(vector.keyArn);
      expect(decoded.context).toEqual(vector.context);
      expect(decoded.plaintext.toString('hex')).toBe(vector.plaintext);
    });
  }
});

const S = 1024;
const SEGMENT = S + 16;

describe('what this build seals, the reference decoder opens', () => {
  for (const size of [0, 1, S - 1, S, S + 1, 2 * S, 10 * S + 3]) {
    it(`${size} bytes at segment size ${S}`, async () => {
      const dataKey = randomBytes(32);
      const plaintext = randomBytes(size);
      const aad = randomBytes(size % 5);
      const sealed = await buildSeal(plaintext, dataKey, aad, S, { tenant: 'acme' });
      expect(referenceDecrypt(sealed, dataKey, aad).plaintext.equals(plaintext)).toBe(true);
      expect((await buildOpen(sealed, dataKey, aad)).equals(plaintext)).toBe(true);
      expect(sealed.length - referenceDecrypt(sealed, dataKey, aad).headerLength).toBe(size + Math.max(1, Math.ceil(size / S)) * 16);
    });
  }
});

describe('a changed stream fails in both decoders', () => {
  const dataKey = randomBytes(32);
  const aad = Buffer.from('aad');
  const plaintext = randomBytes(5 * S + 100); // segments 0..4 full, 5 the last (100 bytes)
  let sealed: Buffer;
  let headerLength: number;
  const segmentsOf = () => {
    const out: Buffer[] = [];
    for (let at = headerLength; at < sealed.length; at += SEGMENT) out.push(sealed.subarray(at, at + SEGMENT));
    return out;
  };
  const header = () => sealed.subarray(0, headerLength);

  const expectBothFail = async (changed: Buffer, segment?: number) => {
    expect(() => referenceDecrypt(changed, dataKey, aad)).toThrow();
    const failure = await buildOpen(changed, dataKey, aad).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(SegmentAuthenticationError);
    if (segment !== undefined) expect((failure as SegmentAuthenticationError).segment).toBe(segment);
  };

  it('(setup) the unchanged stream opens', async () => {
    sealed = await buildSeal(plaintext, dataKey, aad, S);
    headerLength = referenceDecrypt(sealed, dataKey, aad).headerLength;
    expect((await buildOpen(sealed, dataKey, aad)).equals(plaintext)).toBe(true);
  });

  for (const [i, j] of [[0, 1], [2, 3], [3, 4], [4, 5]] as const) {
    it(`segments ${i} and ${j} swapped`, async () => {
      const s = segmentsOf();
      [s[i], s[j]] = [s[j] as Buffer, s[i] as Buffer];
      await expectBothFail(Buffer.concat([header(), ...s]), i);
    });
  }
  for (const i of [0, 2, 4]) {
    it(`segment ${i} dropped`, async () => {
      const s = segmentsOf();
      s.splice(i, 1);
      await expectBothFail(Buffer.concat([header(), ...s]), i);
    });
    it(`segment ${i} duplicated`, async () => {
      const s = segmentsOf();
      s.splice(i, 0, s[i] as Buffer);
      await expectBothFail(Buffer.concat([header(), ...s]), i + 1);
    });
  }
  for (const keep of [1, 3, 5]) {
    it(`truncated exactly at a segment boundary (after ${keep} segments)`, async () => {
      await expectBothFail(Buffer.concat([header(), ...segmentsOf().slice(0, keep)]), keep - 1);
    });
  }
  it('truncated to the header alone', async () => expectBothFail(Buffer.from(header()), 0));
  // The last segment holds 100 plaintext bytes (116 with its tag).
  for (const cut of [1, 17, 100, 115]) {
    it(`truncated inside the last segment (${cut} bytes removed)`, async () => expectBothFail(sealed.subarray(0, sealed.length - cut), 5));
  }
  for (const into of [1, 17, SEGMENT - 1]) {
    it(`truncated inside segment 2 (${into} bytes into it)`, async () => expectBothFail(sealed.subarray(0, headerLength + 2 * SEGMENT + into), 2));
  }
  for (const extra of [1, 16, SEGMENT]) {
    it(`extended by ${extra} bytes`, async () => expectBothFail(Buffer.concat([sealed, randomBytes(extra)]), 5));
  }
  it('extended by a segment of another stream under the same key', async () => {
    const other = await buildSeal(randomBytes(3 * S), dataKey, aad, S);
    await expectBothFail(Buffer.concat([sealed, other.subarray(other.length - SEGMENT)]), 5);
  });
  for (const offset of [0, 700, 5 * SEGMENT + 50]) {
    it(`one ciphertext bit flipped at segment byte ${offset}`, async () => {
      const changed = Buffer.from(sealed);
      changed.writeUInt8(changed.readUInt8(headerLength + offset) ^ 1, headerLength + offset);
      await expectBothFail(changed, Math.floor(offset / SEGMENT));
    });
  }
  it('a wrong aad fails at segment 0', async () => {
    await expect(buildOpen(sealed, dataKey, Buffer.from('other'))).rejects.toMatchObject({ segment: 0 });
    expect(() => referenceDecrypt(sealed, dataKey, Buffer.from('other'))).toThrow();
  });
  it('a changed segment size in the header fails', async () => {
    const changed = Buffer.from(sealed);
    changed.writeUInt32BE(2 * S, headerLength - 4);
    await expectBothFail(changed);
  });
});
