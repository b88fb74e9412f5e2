/**
 * The OpenSSL `enc` reader against files the real `openssl` command made: each derivation,
 * detection, unsalted files, the raw-key password form, and the failures a batch must report.
 */
import { createReadStream, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import {
  OpensslDecryptStream,
  OpensslEncError,
  chooseKdf,
  deriveKeyAndIv,
  detectionCandidates,
  opensslPassword,
  parseKdf,
  readEncLayout,
  type KdfSpec,
  type OpensslKdf,
} from '../../src/client/migrate/openssl-enc.js';
import { OPENSSL_FLAGS, opensslAvailable, opensslDecrypts, opensslDerivation, opensslEncrypt, opensslEncryptWithPassFile } from './openssl-tool.js';

const available = opensslAvailable();
if (!available && process.env.CI === 'true') throw new Error('openssl is required in CI');
const dir = mkdtempSync(join(tmpdir(), 'openssl-enc-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let counter = 0;
const path = (name: string) => join(dir, `${counter++}-${name}`);

/** A data key and its password as `aws kms generate-data-key` prints the key. */
function dataKey(): { key: Buffer; password: string } {
  const key = randomBytes(32);
  return { key, password: key.toString('base64') };
}

async function decryptFile(file: string, password: Buffer, pinned?: KdfSpec, iterations?: number): Promise<{ plaintext: Buffer; kdf: KdfSpec }> {
  const layout = await readEncLayout(file);
  const kdf = chooseKdf(layout, password, pinned, detectionCandidates(iterations));
  const chunks: Buffer[] = [];
  await pipeline(
    createReadStream(file, { start: layout.bodyOffset, highWaterMark: 1000 }),
    new OpensslDecryptStream(password, layout.salt, kdf),
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(Buffer.from(chunk));
        callback();
      },
    }),
  );
  return { plaintext: Buffer.concat(chunks), kdf };
}

describe.skipIf(!available)('openssl enc files', () => {
  it.each(['md5', 'sha256', 'pbkdf2'] as const)('derives the key and IV openssl -P prints (%s)', (kdf) => {
    const { password } = dataKey();
    const salt = randomBytes(8);
    const flags = kdf === 'pbkdf2' ? ['-pbkdf2', '-iter', '1000'] : OPENSSL_FLAGS[kdf];
    const expected = opensslDerivation(password, flags, salt.toString('hex'));
    const derived = deriveKeyAndIv(Buffer.from(password), salt, { kdf, iterations: 1000 });
    expect(derived.subarray(0, 32).toString('hex').toUpperCase()).toBe(expected.key);
    expect(derived.subarray(32).toString('hex').toUpperCase()).toBe(expected.iv);
  });

  const sizes = [0, 1, 15, 16, 17, 4096, 100_003];
  const kdfs: OpensslKdf[] = ['md5', 'sha256', 'pbkdf2'];
  for (const kdf of kdfs) {
    it(`detects ${kdf} and decrypts what openssl encrypted, at ${sizes.join(', ')} bytes`, async () => {
      for (const size of sizes) {
        const { key, password } = dataKey();
        const plain = path('plain');
        const cipher = path('cipher');
        const plaintext = randomBytes(size);
        writeFileSync(plain, plaintext);
        opensslEncrypt(plain, cipher, password, OPENSSL_FLAGS[kdf]);
        const pw = opensslPassword(key, 'base64');
        // Detection accepts only a single fit; with a right key the others fit ~1 time in 128.
        // When one does, the file is ambiguous (said so), and pinning must still work.
        try {
          const detected = await decryptFile(cipher, pw);
          expect(detected.kdf.kdf).toBe(kdf);
          expect(detected.plaintext.equals(plaintext)).toBe(true);
        } catch (error) {
          expect((error as OpensslEncError).code).toBe('AmbiguousDerivation');
        }
        const pinned = await decryptFile(cipher, pw, parseKdf(kdf));
        expect(pinned.plaintext.equals(plaintext)).toBe(true);
      }
    });
  }

  it('uses -iter when the script gave one', async () => {
    const { key, password } = dataKey();
    const plain = path('plain');
    const cipher = path('cipher');
    writeFileSync(plain, 'payload with a custom iteration count\n');
    opensslEncrypt(plain, cipher, password, ['-pbkdf2', '-iter', '25000']);
    const pinned = await decryptFile(cipher, opensslPassword(key, 'base64'), parseKdf('pbkdf2', 25_000));
    expect(pinned.plaintext.toString()).toBe('payload with a custom iteration count\n');
    // The default 10000 does not decrypt it: the padding check says so, or (when it fits by
    // chance, ~1 time in 256) the bytes differ.
    const withDefault = await decryptFile(cipher, opensslPassword(key, 'base64'), parseKdf('pbkdf2')).then(
      ({ plaintext }) => plaintext.toString(),
      (error: unknown) => (error as OpensslEncError).code,
    );
    expect(withDefault).not.toBe('payload with a custom iteration count\n');
  });

  it('reads the raw-key password form (-pass file: on the decoded key: up to the first newline or NUL)', async () => {
    // Keys chosen to have a newline and a NUL inside, where OpenSSL cuts the password.
    for (const cut of [0x0a, 0x00]) {
      const key = randomBytes(32);
      // No cut before byte 9 (a random key has one there about 7 times in 100).
      for (let i = 0; i < 9; i++) if (key[i] === 0x0a || key[i] === 0x00) key[i] = 0x41;
      key[9] = cut;
      const keyFile = path('rawkey');
      writeFileSync(keyFile, key);
      const plain = path('plain');
      const cipher = path('cipher');
      writeFileSync(plain, 'raw key form');
      opensslEncryptWithPassFile(plain, cipher, keyFile);
      expect(opensslPassword(key, 'raw').length).toBe(9);
      const { plaintext } = await decryptFile(cipher, opensslPassword(key, 'raw'), parseKdf('sha256'));
      expect(plaintext.toString()).toBe('raw key form');
    }
  });

  it('a file without "Salted__" is not detected; with --kdf it decrypts as unsalted', async () => {
    const { key, password } = dataKey();
    const plain = path('plain');
    const cipher = path('cipher');
    writeFileSync(plain, 'unsalted');
    opensslEncrypt(plain, cipher, password, ['-nosalt', '-md', 'sha256']);
    const pw = opensslPassword(key, 'base64');
    await expect(decryptFile(cipher, pw)).rejects.toMatchObject({ code: 'NoSaltHeader', message: expect.stringContaining('--kdf') });
    const { plaintext } = await decryptFile(cipher, pw, parseKdf('sha256'));
    expect(plaintext.toString()).toBe('unsalted');
  });

  it('a truncated file is refused before decryption', async () => {
    const { key, password } = dataKey();
    const plain = path('plain');
    const cipher = path('cipher');
    writeFileSync(plain, randomBytes(1000));
    opensslEncrypt(plain, cipher, password, OPENSSL_FLAGS.sha256);
    truncateSync(cipher, readFileSync(cipher).length - 7);
    await expect(decryptFile(cipher, opensslPassword(key, 'base64'))).rejects.toMatchObject({ code: 'Truncated' });
    truncateSync(cipher, 10);
    await expect(decryptFile(cipher, opensslPassword(key, 'base64'))).rejects.toMatchObject({ code: 'Truncated' });
  });

  it('a wrong key is refused when no derivation fits, and pinned it fails the padding check', async () => {
    const plain = path('plain');
    const cipher = path('cipher');
    writeFileSync(plain, randomBytes(5000));
    opensslEncrypt(plain, cipher, dataKey().password, OPENSSL_FLAGS.pbkdf2);
    // A wrong key passes a padding check ~1 time in 256 (documented): draw one that openssl
    // itself refuses with every derivation, which the reader must then refuse too.
    let wrong = dataKey();
    while (kdfs.some((kdf) => opensslDecrypts(cipher, path('out'), wrong.password, OPENSSL_FLAGS[kdf]))) wrong = dataKey();
    const pw = opensslPassword(wrong.key, 'base64');
    await expect(decryptFile(cipher, pw)).rejects.toMatchObject({ code: 'NoDerivationFits' });
    await expect(decryptFile(cipher, pw, parseKdf('pbkdf2'))).rejects.toMatchObject({ code: 'BadPadding' });
  });

  it('refuses a --kdf or --iter it does not know', () => {
    expect(() => parseKdf('sha1')).toThrow(/--kdf/);
    expect(() => parseKdf('pbkdf2', 0)).toThrow(/--iter/);
  });
});
