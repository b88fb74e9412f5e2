/**
 * Property tests for the key-set key block (fast-check, the fixed seed of test/helpers/seed.ts):
 * any key-set block the writer produces parses back to the same set and wrapped keys, in both
 * formats; and whatever bytes follow the block marker (random, or a valid block with its counts
 * and lengths overwritten), the parsers either succeed or throw EnvelopeError (HTTP 422), never
 * another exception, and never return more wrapped keys than ENVELOPE_LIMITS allows.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EnvelopeError } from '../../src/format/errors.js';
import { encodeEnvelopePrefix, encodeKeySetBlock, parseEnvelope } from '../../src/format/format.js';
import { ENVELOPE_LIMITS } from '../../src/format/limits.js';
import { sealMessage } from '../../src/format/message-crypto.js';
import { encodeStreamHeader, parseStreamHeader } from '../../src/format/stream-format.js';
import { seeded, testSeed } from '../helpers/seed.js';

const SEED = testSeed('test/fuzz/key-set-block.test.ts');

const arn = fc.stringMatching(/^[a-z0-9-]{1,40}$/).map((id) => `arn:aws:kms:eu-west-1:111122223333:key/${id}`);
const block = fc.record({
  keySet: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/),
  wrappedKeys: fc.uniqueArray(fc.record({ keyArn: arn, wrappedKey: fc.uint8Array({ minLength: 1, maxLength: 300 }).map((bytes) => Buffer.from(bytes)) }), {
    minLength: 1,
    maxLength: ENVELOPE_LIMITS.maxWrappedKeys,
    selector: (entry) => entry.keyArn,
  }),
});

function sealed(keyBlock: { keySet: string; wrappedKeys: { keyArn: string; wrappedKey: Buffer }[] }): Buffer {
  return sealMessage(Buffer.alloc(32, 1), encodeEnvelopePrefix(keyBlock, { tenant: 'a' }), Buffer.from('payload'));
}

/** Parses, or throws only EnvelopeError; what parses is within the limits. */
function parsesSafely(parse: () => { wrappedKeys: unknown[] }): void {
  try {
    const parsed = parse();
    expect(parsed.wrappedKeys.length).toBeGreaterThanOrEqual(1);
    expect(parsed.wrappedKeys.length).toBeLessThanOrEqual(ENVELOPE_LIMITS.maxWrappedKeys);
  } catch (error) {
    expect(error).toBeInstanceOf(EnvelopeError);
  }
}

describe('key-set key block', () => {
  it('round-trips in message format 1 and stream format 2', () => {
    fc.assert(
      fc.property(block, (keyBlock) => {
        const parsed = parseEnvelope(sealed(keyBlock));
        expect(parsed.keySet).toBe(keyBlock.keySet);
        expect(parsed.wrappedKeys.map((entry) => [entry.keyArn, Buffer.from(entry.wrappedKey).toString('hex')])).toEqual(
          keyBlock.wrappedKeys.map((entry) => [entry.keyArn, entry.wrappedKey.toString('hex')]),
        );
        const { header } = encodeStreamHeader(keyBlock, { tenant: 'a' }, Buffer.alloc(32, 2), Buffer.alloc(32, 3), 65_536);
        const stream = parseStreamHeader(header);
        expect(stream.keySet).toBe(keyBlock.keySet);
        expect(stream.wrappedKeys.map((entry) => entry.keyArn)).toEqual(keyBlock.wrappedKeys.map((entry) => entry.keyArn));
        expect(stream.length).toBe(header.length);
      }),
      seeded(SEED, 300),
    );
  });

  it('random bytes after the marker: EnvelopeError or a bounded parse, never another exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2_000 }), (tail) => {
        const bytes = Buffer.concat([Buffer.from([1, 1, 0, 0]), Buffer.from(tail)]);
        parsesSafely(() => parseEnvelope(bytes));
        parsesSafely(() => parseStreamHeader(Buffer.concat([Buffer.from([2, 2, 0, 0]), Buffer.from(tail)])));
      }),
      seeded(SEED, 3_000),
    );
  });

  it('a valid block with its version, name length, count or a length field overwritten is refused or bounded', () => {
    fc.assert(
      fc.property(block, fc.nat(), fc.integer({ min: 0, max: 0xffff }), (keyBlock, position, value) => {
        const envelope = sealed(keyBlock);
        const blockLength = encodeKeySetBlock(keyBlock.keySet, keyBlock.wrappedKeys).length;
        const at = 2 + (position % blockLength);
        const mutated = Buffer.from(envelope);
        if (at + 1 < mutated.length) mutated.writeUInt16BE(value, at);
        parsesSafely(() => parseEnvelope(mutated));
      }),
      seeded(SEED, 3_000),
    );
  });

  it('refuses a count above the limit before reading the entries', () => {
    const bytes = Buffer.concat([Buffer.from([1, 1, 0, 0, 1, 1]), Buffer.from('a'), Buffer.from([ENVELOPE_LIMITS.maxWrappedKeys + 1]), Buffer.alloc(200)]);
    expect(() => parseEnvelope(bytes)).toThrow(/wrapped key count out of bounds/);
    const unknownVersion = Buffer.concat([Buffer.from([1, 1, 0, 0, 2, 1]), Buffer.alloc(200)]);
    expect(() => parseEnvelope(unknownVersion)).toThrow(/key block version/);
  });
});
