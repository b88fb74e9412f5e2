/**
 * The local wrapped-key format, checked against its documentation in src/kms/local-wrap.ts:
 * byte-exact vectors for the canonical context, a blob built by hand from the documented
 * layout with node:crypto alone, and fuzzing that no input makes parsing throw.
 */
import { createCipheriv, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalKeyProvider } from '../../src/kms/local.js';
import { canonicalContext, unwrapDataKey, wrapDataKey, wrappedKeyId, WRAPPED_KEY_BYTES } from '../../src/kms/local-wrap.js';
import { expectKmsError } from './kms-assert.js';

describe('canonicalContext', () => {
  it('matches the documented encoding byte for byte', () => {
    // u32be count, then sorted pairs of (u32be len, key, u32be len, value)
    expect(canonicalContext({}).toString('hex')).toBe('00000000');
    expect(canonicalContext({ b: '2', a: '1' }).toString('hex')).toBe(
      '00000002' + '00000001' + '61' + '00000001' + '31' + '00000001' + '62' + '00000001' + '32',
    );
  });

  it('is order-independent and injective on ambiguous concatenations', () => {
    expect(canonicalContext({ x: '1', y: '2' }).equals(canonicalContext({ y: '2', x: '1' }))).toBe(true);
    expect(canonicalContext({ a: 'bc' }).equals(canonicalContext({ ab: 'c' }))).toBe(false);
    expect(canonicalContext({ a: '' }).equals(canonicalContext({}))).toBe(false);
  });

  it('sorts by UTF-8 bytes (not UTF-16 code units)', () => {
    // U+FF5E (UTF-8 ef bd 9e) sorts after U+1F600 (f0 9f 98 80) in UTF-16, before it in UTF-8.
    const encoded = canonicalContext({ '\u{1F600}': 'emoji', '\uFF5E': 'tilde' }).toString('hex');
    expect(encoded.indexOf('efbd9e')).toBeLessThan(encoded.indexOf('f09f9880'));
  });
});

describe('wrapped key layout', () => {
  it('is 77 bytes: version 1, key id, IV, ciphertext, tag, with header+context as AAD', () => {
    const masterKey = randomBytes(32);
    const dataKey = randomBytes(32);
    const keyId = randomUUID();
    const context = { tenant: 'acme' };

    // Build a blob from the documentation alone, then let the implementation open it.
    const header = Buffer.concat([Buffer.from([1]), Buffer.from(keyId.replaceAll('-', ''), 'hex')]);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', masterKey, iv);
    cipher.setAAD(Buffer.concat([header, canonicalContext(context)]));
    const blob = Buffer.concat([header, iv, cipher.update(dataKey), cipher.final(), cipher.getAuthTag()]);

    expect(blob).toHaveLength(WRAPPED_KEY_BYTES);
    expect(wrappedKeyId(blob)).toBe(keyId);
    expect(unwrapDataKey(masterKey, blob, context)?.equals(dataKey)).toBe(true);

    const ours = wrapDataKey(masterKey, keyId, dataKey, context);
    expect(ours).toHaveLength(WRAPPED_KEY_BYTES);
    expect(ours.subarray(0, 17).equals(header)).toBe(true);
  });

  it('authenticates the key id in the header', () => {
    const masterKey = randomBytes(32);
    const blob = wrapDataKey(masterKey, randomUUID(), randomBytes(32), {});
    blob[5] = (blob[5] ?? 0) ^ 0x01; // another key id, same master key
    expect(unwrapDataKey(masterKey, blob, {})).toBeUndefined();
  });
});

describe('LocalKeyProvider on hostile wrapped keys', () => {
  let dir: string;
  let provider: LocalKeyProvider;
  let keyArn: string;
  let wrapped: Buffer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kms-wrap-'));
    provider = new LocalKeyProvider({ path: join(dir, 'keystore.json') });
    const generated = await provider.generateDataKey('alias/default', { k: 'v' });
    keyArn = generated.keyArn;
    wrapped = generated.wrappedKey;
  });
  afterAll(async () => {
    await provider.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers InvalidCiphertext for any byte string of any length (fuzzed)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 10_000 }), async (bytes) => {
        await expectKmsError(provider.decryptDataKey(Buffer.from(bytes), keyArn, { k: 'v' }), 'InvalidCiphertext');
      }),
      { numRuns: 300 },
    );
  });

  it('answers InvalidCiphertext for every single-bit flip of a valid blob', async () => {
    for (let index = 0; index < wrapped.length; index += 1) {
      const flipped = Buffer.from(wrapped);
      flipped[index] = (flipped[index] ?? 0) ^ 0x80;
      await expectKmsError(provider.decryptDataKey(flipped, keyArn, { k: 'v' }), 'InvalidCiphertext');
    }
    await expectKmsError(provider.decryptDataKey(Buffer.concat([wrapped, Buffer.from([0])]), keyArn, { k: 'v' }), 'InvalidCiphertext');
  });

  it('decrypts from a Uint8Array view at an offset, as well as a Buffer', async () => {
    const backing = new Uint8Array(wrapped.length + 8);
    backing.set(wrapped, 8);
    const view = backing.subarray(8);
    const unwrapped = await provider.decryptDataKey(view as Buffer, keyArn, { k: 'v' });
    expect(unwrapped.plaintextKey).toHaveLength(32);
  });
});
