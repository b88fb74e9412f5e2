/**
 * The parser and the per-message crypto: tampering with any region of a ciphertext, a wrong
 * data key or aad, truncation and garbage all give a documented EnvelopeError, and every
 * length is bounded before it is used.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { EnvelopeError } from '../../src/format/errors.js';
import { encodeEnvelopePrefix, parseCiphertext, toCiphertextString } from '../../src/format/format.js';
import { ENVELOPE_LIMITS } from '../../src/format/limits.js';
import { openMessage, sealMessage } from '../../src/format/message-crypto.js';

const dataKey = randomBytes(32);
const keyArn = 'arn:aws:kms:eu-west-2:111122223333:key/3c74e818-3bfc-40a7-98ed-587a0d03d226';
const wrappedKey = randomBytes(184);
const context = { tenant: 'a', purpose: 'billing' };
const aad = Buffer.from('record-7');
const plaintext = Buffer.from('attack at dawn');

/** `null` means "no aad" (undefined would pick the default). */
function seal(body = plaintext, withAad: Buffer | null = aad): Buffer {
  return sealMessage(dataKey, encodeEnvelopePrefix({ keyArn, wrappedKey }, context), body, withAad ?? undefined);
}

function open(envelope: Buffer, key = dataKey, withAad: Buffer | null = aad): Buffer {
  return openMessage(key, parseCiphertext(toCiphertextString(envelope)), withAad ?? undefined);
}

function errorCodeOf(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    if (error instanceof EnvelopeError) return error.code;
    throw error;
  }
  return 'no error';
}

/** Byte offsets of each region of the envelope made by seal(). */
function regions(envelope: Buffer): Record<string, number> {
  const arnStart = 4;
  const wrappedStart = arnStart + Buffer.byteLength(keyArn) + 2;
  const contextStart = wrappedStart + wrappedKey.length;
  const contextLength = 2 + Object.entries(context).reduce((sum, [k, v]) => sum + 4 + k.length + v.length, 0);
  const messageId = contextStart + contextLength;
  const commitment = messageId + 32;
  const iv = commitment + 32;
  const body = iv + 12;
  return {
    version: 0,
    algorithm: 1,
    keyArnLength: 2,
    keyArn: arnStart + 5,
    wrappedKey: wrappedStart + 10,
    contextCount: contextStart + 1,
    context: contextStart + 6,
    messageId,
    commitment: commitment + 3,
    iv: iv + 2,
    body: body + 1,
    tag: envelope.length - 3,
  };
}

describe('ciphertext format v1', () => {
  it('round-trips with context and aad, and the ciphertext names its key and context', () => {
    const envelope = seal();
    const parsed = parseCiphertext(toCiphertextString(envelope));
    expect(parsed.keyArn).toBe(keyArn);
    expect(parsed.wrappedKey.equals(wrappedKey)).toBe(true);
    expect({ ...parsed.context }).toEqual(context);
    expect(open(envelope).equals(plaintext)).toBe(true);
  });

  it('produces a different ciphertext for the same plaintext every time (fresh message id and iv)', () => {
    expect(seal().equals(seal())).toBe(false);
  });

  it.each(['version', 'algorithm', 'keyArnLength', 'keyArn', 'wrappedKey', 'contextCount', 'context', 'messageId', 'commitment', 'iv', 'body', 'tag'])(
    'rejects a flipped byte in the %s',
    (region) => {
      const envelope = seal();
      const at = regions(envelope)[region]!;
      envelope[at]! ^= 0x01;
      const code = errorCodeOf(() => open(envelope));
      // The key block (ARN, wrapped key) is bound by KMS and the commitment, not by GCM:
      // changing it alone leaves the local crypto intact, which is what lets rewrap work.
      // Through the service, a changed ARN or wrapped key fails at KMS (tested over HTTP).
      if (region === 'keyArn' || region === 'wrappedKey') expect(code).toBe('no error');
      else expect(['UnsupportedFormat', 'MalformedCiphertext', 'KeyCommitmentMismatch', 'AuthenticationFailed']).toContain(code);
    },
  );

  it('refuses a different data key at the commitment, before any decryption', () => {
    expect(errorCodeOf(() => open(seal(), randomBytes(32)))).toBe('KeyCommitmentMismatch');
  });

  it('refuses a wrong or missing aad', () => {
    expect(errorCodeOf(() => open(seal(), dataKey, Buffer.from('record-8')))).toBe('AuthenticationFailed');
    expect(errorCodeOf(() => open(seal(), dataKey, null))).toBe('AuthenticationFailed');
    expect(errorCodeOf(() => open(seal(plaintext, null), dataKey, aad))).toBe('AuthenticationFailed');
  });

  it('refuses a context swapped for another one', () => {
    const other = sealMessage(dataKey, encodeEnvelopePrefix({ keyArn, wrappedKey }, { tenant: 'b', purpose: 'billing' }), plaintext, aad);
    const original = seal();
    const contextStart = 4 + Buffer.byteLength(keyArn) + 2 + wrappedKey.length;
    other.copy(original, contextStart, contextStart, contextStart + 2 + 4 + 6 + 1 + 4 + 7 + 7);
    expect(errorCodeOf(() => open(original))).toBe('AuthenticationFailed');
  });

  it('rejects every truncation with a documented error', () => {
    const text = toCiphertextString(seal());
    for (let length = 0; length < text.length; length += 7) {
      expect(['UnsupportedFormat', 'MalformedCiphertext', 'AuthenticationFailed', 'KeyCommitmentMismatch']).toContain(
        errorCodeOf(() => openMessage(dataKey, parseCiphertext(text.slice(0, length)), aad)),
      );
    }
  });

  it('rejects a foreign prefix, a future version and bad base64url', () => {
    expect(errorCodeOf(() => parseCiphertext('vault:v1:abcd'))).toBe('UnsupportedFormat');
    expect(errorCodeOf(() => parseCiphertext('ev2:AAAA'))).toBe('UnsupportedFormat');
    expect(errorCodeOf(() => parseCiphertext('ev1:not base64!'))).toBe('MalformedCiphertext');
    expect(errorCodeOf(() => parseCiphertext('ev1:A'))).toBe('MalformedCiphertext');
  });

  it('checks declared lengths against the bytes present before slicing', () => {
    const envelope = seal();
    envelope.writeUInt16BE(0xffff, 2); // key ARN claims 65535 bytes
    expect(errorCodeOf(() => open(envelope))).toBe('MalformedCiphertext');
    const tooMany = seal();
    const contextStart = 4 + Buffer.byteLength(keyArn) + 2 + wrappedKey.length;
    tooMany.writeUInt16BE(ENVELOPE_LIMITS.maxContextPairs + 1, contextStart);
    expect(errorCodeOf(() => open(tooMany))).toBe('MalformedCiphertext');
  });

  it('refuses non-canonical context encodings (one context, one encoding)', () => {
    // Keys out of order: swap the two pairs by encoding them by hand.
    const arn = Buffer.from(keyArn);
    const pair = (k: string, v: string) => {
      const kb = Buffer.from(k);
      const vb = Buffer.from(v);
      const out = Buffer.alloc(4 + kb.length + vb.length);
      out.writeUInt16BE(kb.length, 0);
      kb.copy(out, 2);
      out.writeUInt16BE(vb.length, 2 + kb.length);
      vb.copy(out, 4 + kb.length);
      return out;
    };
    const header = Buffer.concat([
      Buffer.from([1, 1]),
      Buffer.from([0, arn.length]),
      arn,
      Buffer.from([0, 1, 0xaa]),
      Buffer.from([0, 2]),
      pair('tenant', 'a'),
      pair('purpose', 'billing'),
      Buffer.alloc(32 + 32 + 12 + 16),
    ]);
    expect(errorCodeOf(() => parseCiphertext(toCiphertextString(header)))).toBe('MalformedCiphertext');
  });

  it('refuses to build a header beyond the limits', () => {
    expect(() => encodeEnvelopePrefix({ keyArn: 'x'.repeat(ENVELOPE_LIMITS.maxKeyArnBytes + 1), wrappedKey }, {})).toThrow(RangeError);
    expect(() => encodeEnvelopePrefix({ keyArn, wrappedKey: Buffer.alloc(0) }, {})).toThrow(RangeError);
    expect(() => encodeEnvelopePrefix({ keyArn, wrappedKey }, { k: 'v'.repeat(ENVELOPE_LIMITS.maxContextValueBytes + 1) })).toThrow(RangeError);
  });
});
