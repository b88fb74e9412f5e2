/**
 * Property tests for the ciphertext parser and opener (fast-check): whatever a caller sends as
 * `ciphertext`, parseCiphertext/openMessage either succeed or throw EnvelopeError (HTTP 422),
 * never another exception (which would be a 500), never allocate more than the input they were
 * given, and a tampered envelope never opens to anything but the original plaintext.
 *
 * Inputs: random strings; random bytes behind the `ev1:` prefix; and mutations of valid
 * ciphertexts (bit flips, truncations, insertions, deletions, and length fields overwritten
 * with large values). Bounded: fixed run counts, each property well under a few seconds.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EnvelopeError } from '../../src/format/errors.js';
import {
  CIPHERTEXT_PREFIX,
  encodeEnvelopePrefix,
  parseCiphertext,
  parseEnvelope,
  toCiphertextString,
  type ParsedEnvelope,
} from '../../src/format/format.js';
import { openMessage, sealMessage } from '../../src/format/message-crypto.js';
import { seeded, testSeed } from '../helpers/seed.js';

const SEED = testSeed('test/fuzz/ciphertext-parser.test.ts');

const KEY_ARN = 'arn:aws:kms:eu-west-2:111122223333:key/6f743fd5-495b-4da8-bcea-73337f197393';

interface Sample {
  dataKey: Buffer;
  plaintext: Buffer;
  aad: Buffer | undefined;
  bytes: Buffer;
  text: string;
}

/** A valid envelope: random data key, wrapped key, context, plaintext and aad. */
const validSample = fc
  .record({
    dataKey: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    wrappedKey: fc.uint8Array({ minLength: 1, maxLength: 200 }),
    context: fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), fc.string({ maxLength: 20 }), { maxKeys: 4 }),
    plaintext: fc.uint8Array({ maxLength: 300 }),
    aad: fc.option(fc.uint8Array({ minLength: 1, maxLength: 16 }), { nil: undefined }),
  })
  .map(({ dataKey, wrappedKey, context, plaintext, aad }): Sample => {
    const key = Buffer.from(dataKey);
    const prefix = encodeEnvelopePrefix({ keyArn: KEY_ARN, wrappedKey: Buffer.from(wrappedKey) }, context);
    const aadBuffer = aad ? Buffer.from(aad) : undefined;
    const bytes = sealMessage(key, prefix, Buffer.from(plaintext), aadBuffer);
    return { dataKey: key, plaintext: Buffer.from(plaintext), aad: aadBuffer, bytes, text: toCiphertextString(bytes) };
  });

/** Runs `action`; passes if it returns or throws EnvelopeError, fails on any other throw. */
function onlyEnvelopeErrors<T>(action: () => T): T | EnvelopeError {
  try {
    return action();
  } catch (error) {
    if (error instanceof EnvelopeError) return error;
    throw new Error(`expected only EnvelopeError, got ${(error as Error)?.name}: ${(error as Error)?.message}`, { cause: error });
  }
}

/**
 * Nothing parsed may be bigger than the input, and every part is a view into the one decoded
 * buffer (no copy sized by a length field). authenticatedHeader is the one small copy, itself
 * bounded by the input.
 */
function expectBoundedByInput(parsed: ParsedEnvelope, inputBytes: number): void {
  const views = [parsed.wrappedKey, parsed.messageId, parsed.commitment, parsed.iv, parsed.body, parsed.tag, parsed.sealedPart];
  for (const view of views) {
    expect(view.length).toBeLessThanOrEqual(inputBytes);
    expect(view.buffer).toBe(parsed.body.buffer);
  }
  expect(parsed.authenticatedHeader.length).toBeLessThanOrEqual(inputBytes);
}

/**
 * Offsets of the u16 length fields of a v1 envelope (see format.ts), for targeted overwrites.
 * Follows the fields as far as the (possibly already mutated) bytes allow.
 */
function lengthFieldOffsets(bytes: Buffer): number[] {
  const offsets: number[] = [];
  let at = 2;
  const field = (): number | undefined => {
    if (at + 2 > bytes.length) return undefined;
    offsets.push(at);
    const length = bytes.readUInt16BE(at);
    at += 2;
    return length;
  };
  const arnLength = field();
  if (arnLength === undefined) return offsets;
  at += arnLength;
  const wrappedLength = field();
  if (wrappedLength === undefined) return offsets;
  at += wrappedLength;
  const pairs = field();
  for (let i = 0; pairs !== undefined && i < pairs; i++) {
    for (let part = 0; part < 2; part++) {
      const length = field();
      if (length === undefined) return offsets;
      at += length;
    }
  }
  return offsets;
}

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; length: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number }
  | { kind: 'length'; field: number; value: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), length: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
  fc.record({
    kind: fc.constant('length' as const),
    field: fc.nat(),
    value: fc.oneof(fc.constantFrom(0, 1, 0x7fff, 0x8000, 0xfffe, 0xffff), fc.integer({ min: 0, max: 0xffff })),
  }),
);

function mutate(bytes: Buffer, m: Mutation): Buffer {
  const out = Buffer.from(bytes);
  switch (m.kind) {
    case 'flip': {
      const at = m.at % out.length;
      out[at] = out[at]! ^ (1 << m.bit);
      return out;
    }
    case 'truncate':
      return out.subarray(0, m.length % out.length);
    case 'insert': {
      const at = m.at % (out.length + 1);
      return Buffer.concat([out.subarray(0, at), Buffer.from(m.bytes), out.subarray(at)]);
    }
    case 'delete': {
      const at = m.at % out.length;
      return Buffer.concat([out.subarray(0, at), out.subarray(at + m.count)]);
    }
    case 'length': {
      const offsets = lengthFieldOffsets(bytes);
      if (offsets.length > 0) out.writeUInt16BE(m.value, offsets[m.field % offsets.length]!);
      return out;
    }
  }
}

describe('parseCiphertext on arbitrary input', () => {
  it('random strings: only EnvelopeError', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 400 }), fc.string({ maxLength: 400 })), (text) => {
        onlyEnvelopeErrors(() => parseCiphertext(text));
        onlyEnvelopeErrors(() => parseCiphertext(CIPHERTEXT_PREFIX + text));
      }),
      seeded(SEED, 3_000),
    );
  });

  it('random bytes behind ev1: (base64url): only EnvelopeError, and bounded by the input', () => {
    const header = fc.constantFrom(Buffer.from([1, 1]), Buffer.from([1, 2]), Buffer.from([2, 1]), Buffer.alloc(0));
    fc.assert(
      fc.property(header, fc.uint8Array({ maxLength: 2_000 }), (prefix, random) => {
        const bytes = Buffer.concat([prefix, Buffer.from(random)]);
        const text = CIPHERTEXT_PREFIX + bytes.toString('base64url');
        const result = onlyEnvelopeErrors(() => parseCiphertext(text));
        if (!(result instanceof EnvelopeError)) expectBoundedByInput(result, bytes.length);
      }),
      seeded(SEED, 3_000),
    );
  });

  it('valid ciphertexts parse and open to their plaintext (the generator is sound)', () => {
    fc.assert(
      fc.property(validSample, (sample) => {
        const parsed = parseCiphertext(sample.text);
        expectBoundedByInput(parsed, sample.bytes.length);
        expect(openMessage(sample.dataKey, parsed, sample.aad).equals(sample.plaintext)).toBe(true);
      }),
      seeded(SEED, 300),
    );
  });

  it('mutated ciphertexts: only EnvelopeError, and never open to anything but the original plaintext', () => {
    fc.assert(
      fc.property(validSample, fc.array(mutation, { minLength: 1, maxLength: 3 }), (sample, mutations) => {
        const bytes = mutations.reduce((current, m) => (current.length === 0 ? current : mutate(current, m)), sample.bytes);
        const parsed = onlyEnvelopeErrors(() => parseEnvelope(bytes));
        const viaText = onlyEnvelopeErrors(() => parseCiphertext(toCiphertextString(bytes)));
        expect(viaText instanceof EnvelopeError).toBe(parsed instanceof EnvelopeError);
        if (parsed instanceof EnvelopeError) return;
        expectBoundedByInput(parsed, bytes.length);
        const opened = onlyEnvelopeErrors(() => openMessage(sample.dataKey, parsed, sample.aad));
        if (opened instanceof EnvelopeError) return;
        // Opening succeeded: only the key block (bound by the commitment through KMS, not by
        // GCM) may have changed; the sealed part and so the plaintext are the original ones.
        expect(opened.equals(sample.plaintext)).toBe(true);
        expect(parsed.sealedPart.equals(parseEnvelope(sample.bytes).sealedPart)).toBe(true);
      }),
      seeded(SEED, 1_500),
    );
  });

  it('a 1 KiB input with huge length fields is refused at once, without a big allocation', () => {
    const sample = fc.sample(validSample, { numRuns: 1, seed: 7 })[0]!;
    const offsets = lengthFieldOffsets(sample.bytes);
    const base = Buffer.concat([sample.bytes, randomBytes(Math.max(0, 1024 - sample.bytes.length))]).subarray(0, 1024);
    const started = performance.now();
    for (const offset of offsets) {
      for (const value of [0xffff, 0xfffe, 0x8000, 0x1801, 0x0801]) {
        const bytes = Buffer.from(base);
        bytes.writeUInt16BE(value, offset);
        const result = onlyEnvelopeErrors(() => parseCiphertext(toCiphertextString(bytes)));
        // A length larger than what remains, or than ENVELOPE_LIMITS, is refused before use.
        if (!(result instanceof EnvelopeError)) expectBoundedByInput(result, bytes.length);
      }
    }
    // A huge declared context count on a tiny input.
    const pairs = Buffer.from(base);
    pairs.writeUInt16BE(0xffff, offsets[2]!);
    expect(() => parseEnvelope(pairs)).toThrow(EnvelopeError);
    expect(performance.now() - started).toBeLessThan(250);
  });

  it('a ciphertext of maximum request size is parsed in bounded time', () => {
    const sample = fc.sample(validSample, { numRuns: 1, seed: 11 })[0]!;
    // ~6 MiB of base64url, as a decrypt body near BODY_LIMIT_BYTES could carry.
    const huge = `${sample.text}${'A'.repeat(6 * 1024 * 1024)}`;
    const started = performance.now();
    const result = onlyEnvelopeErrors(() => parseCiphertext(huge));
    expect(performance.now() - started).toBeLessThan(2_000);
    if (!(result instanceof EnvelopeError)) {
      expect(() => openMessage(sample.dataKey, result, sample.aad)).toThrow(EnvelopeError);
    }
  });
});
