/**
 * The local wrapped-key format, checked against its documentation in src/kms/local-wrap.ts:
 * byte-exact vectors for the canonical context, a blob built by hand from the documented
 * layout with node:crypto alone, and fuzzing that no input makes parsing throw.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalKeyProvider } from '../../src/kms/local.js';
import {
  canonicalContext,
  deriveWrapKey,
  LEGACY_WRAPPED_KEY_BYTES,
  unwrapDataKey,
  wrapDataKey,
  wrappedKeyId,
  WRAPPED_KEY_BYTES,
} from '../../src/kms/local-wrap.js';
import { expectKmsError } from './kms-assert.js';
import { seeded, testSeed } from '../helpers/seed.js';

const SEED = testSeed('test/kms/local-wrap.test.ts');

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
  it('is 97 bytes: version 2, key id, salt, ciphertext, tag, under an HKDF key of its own', () => {
    const masterKey = randomBytes(32);
    const dataKey = randomBytes(32);
    const keyId = randomUUID();
    const context = { tenant: 'acme' };

    // Build a blob from the documentation alone, then let the implementation open it.
    const header = Buffer.concat([Buffer.from([2]), Buffer.from(keyId.replaceAll('-', ''), 'hex')]);
    const salt = randomBytes(32);
    const okm = Buffer.from(hkdfSync('sha256', masterKey, salt, Buffer.concat([Buffer.from('envelope-service/local-wrap/v2'), header]), 44));
    const cipher = createCipheriv('aes-256-gcm', okm.subarray(0, 32), okm.subarray(32));
    cipher.setAAD(Buffer.concat([header, canonicalContext(context)]));
    const blob = Buffer.concat([header, salt, cipher.update(dataKey), cipher.final(), cipher.getAuthTag()]);

    expect(blob).toHaveLength(WRAPPED_KEY_BYTES);
    expect(WRAPPED_KEY_BYTES).toBe(97);
    expect(wrappedKeyId(blob)).toBe(keyId);
    expect(unwrapDataKey(masterKey, blob, context)?.equals(dataKey)).toBe(true);

    const ours = wrapDataKey(masterKey, keyId, dataKey, context);
    expect(ours).toHaveLength(WRAPPED_KEY_BYTES);
    expect(ours.subarray(0, 17).equals(header)).toBe(true);
  });

  it('uses a distinct derived key for every wrap, never the master key itself', () => {
    const masterKey = randomBytes(32);
    const keyId = randomUUID();
    const dataKey = randomBytes(32);
    const derivedKeys = new Set<string>();
    for (let wrap = 0; wrap < 200; wrap += 1) {
      const blob = wrapDataKey(masterKey, keyId, dataKey, {});
      const { key } = deriveWrapKey(masterKey, blob.subarray(17, 49), blob.subarray(0, 17));
      expect(key.equals(masterKey)).toBe(false);
      derivedKeys.add(key.toString('hex'));
      // The blob opens under the derived key, so that is the key GCM used.
      const { iv } = deriveWrapKey(masterKey, blob.subarray(17, 49), blob.subarray(0, 17));
      const decipher = createDecipheriv('aes-256-gcm', key, iv);
      decipher.setAAD(Buffer.concat([blob.subarray(0, 17), canonicalContext({})]));
      decipher.setAuthTag(blob.subarray(81));
      expect(Buffer.concat([decipher.update(blob.subarray(49, 81)), decipher.final()]).equals(dataKey)).toBe(true);
    }
    expect(derivedKeys.size).toBe(200);
  });

  it('authenticates the key id in the header', () => {
    const masterKey = randomBytes(32);
    const blob = wrapDataKey(masterKey, randomUUID(), randomBytes(32), {});
    blob[5] = (blob[5] ?? 0) ^ 0x01; // another key id, same master key
    expect(unwrapDataKey(masterKey, blob, {})).toBeUndefined();
  });
});

describe('version 1 wrapped keys (written before per-wrap derivation)', () => {
  const fixture = JSON.parse(readFileSync(new URL('../fixtures/local-wrap/v1.json', import.meta.url), 'utf8')) as {
    masterKey: string;
    keyId: string;
    context: Record<string, string>;
    dataKey: string;
    wrappedKey: string;
  };
  const masterKey = Buffer.from(fixture.masterKey, 'base64');
  const blob = Buffer.from(fixture.wrappedKey, 'base64');

  it('still unwrap, and new wraps use version 2', () => {
    expect(blob[0]).toBe(1);
    expect(blob).toHaveLength(LEGACY_WRAPPED_KEY_BYTES);
    expect(wrappedKeyId(blob)).toBe(fixture.keyId);
    expect(unwrapDataKey(masterKey, blob, fixture.context)?.toString('base64')).toBe(fixture.dataKey);
    expect(wrapDataKey(masterKey, fixture.keyId, randomBytes(32), fixture.context)[0]).toBe(2);
  });

  it('fail on any single-bit flip, another context, or a version byte changed to 2', () => {
    for (let index = 0; index < blob.length; index += 1) {
      const flipped = Buffer.from(blob);
      flipped[index] = (flipped[index] ?? 0) ^ 0x01;
      const id = wrappedKeyId(flipped);
      expect(id === undefined || unwrapDataKey(masterKey, flipped, fixture.context) === undefined).toBe(true);
    }
    expect(unwrapDataKey(masterKey, blob, { ...fixture.context, tenant: 'other' })).toBeUndefined();
    const relabelled = Buffer.from(blob);
    relabelled[0] = 2;
    expect(wrappedKeyId(relabelled)).toBeUndefined(); // 77 bytes is not a version 2 length
    expect(unwrapDataKey(masterKey, relabelled, fixture.context)).toBeUndefined();
  });

  it('decrypt through LocalKeyProvider from a keystore holding that master key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kms-wrap-v1-'));
    try {
      const path = join(dir, 'keystore.json');
      const keystore = {
        format: 'envelope-service/local-keystore',
        version: 1,
        keys: [{ keyId: fixture.keyId, keyMaterial: fixture.masterKey, keyState: 'Enabled', creationDate: '2026-01-01T00:00:00.000Z' }],
        aliases: [{ aliasName: 'alias/default', targetKeyId: fixture.keyId }],
      };
      writeFileSync(path, JSON.stringify(keystore), { mode: 0o600 });
      const provider = new LocalKeyProvider({ path });
      try {
        const unwrapped = await provider.decryptDataKey(blob, fixture.keyId, fixture.context);
        expect(unwrapped.plaintextKey.toString('base64')).toBe(fixture.dataKey);
        // ReEncrypt of an old blob yields a new-format one.
        const rewrapped = await provider.reEncryptDataKey(blob, fixture.keyId, fixture.context, fixture.keyId, fixture.context);
        expect(rewrapped.wrappedKey[0]).toBe(2);
      } finally {
        await provider.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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
      seeded(SEED, 300),
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
