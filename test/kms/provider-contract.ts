/**
 * The KeyProvider contract, one suite run against every provider: the embedded
 * LocalKeyProvider and AwsKmsProvider talking to local-kms over HTTP through the real SDK.
 * Whatever passes here behaves the same for the envelope service on either provider.
 *
 * Call `registerProviderContract(name, setup)` inside a test file; `setup` runs once in
 * beforeAll and returns the subject plus its teardown.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EncryptionContext, KeyProvider } from '../../src/kms/provider.js';
import { expectKmsError } from './kms-assert.js';

export interface ContractSubject {
  provider: KeyProvider;
  /** Two distinct, enabled keys named by alias; A and B must not be the same key. */
  keyA: { alias: string; arn: string; keyId: string };
  keyB: { alias: string; arn: string; keyId: string };
  /** Aliases listAliases must contain: alias name -> key ARN. */
  expectedAliases: Readonly<Record<string, string>>;
  /** Well-formed id (UUID) of a key that does not exist. */
  unknownKeyId: string;
  teardown(): Promise<void>;
}

const CONTEXT: EncryptionContext = { tenant: 'acme', purpose: 'contract-test' };

export function registerProviderContract(
  name: string,
  setup: () => Promise<ContractSubject>,
  options: { skip?: boolean } = {},
): void {
  describe.skipIf(options.skip ?? false)(`KeyProvider contract: ${name}`, () => {
    let subject: ContractSubject;
    let provider: KeyProvider;

    beforeAll(async () => {
      subject = await setup();
      provider = subject.provider;
    });
    afterAll(async () => {
      await subject?.teardown();
    });

    describe('generateDataKey / decryptDataKey', () => {
      it('round-trips a 32-byte data key and reports the key ARN for an alias', async () => {
        const generated = await provider.generateDataKey(subject.keyA.alias, CONTEXT);
        expect(generated.plaintextKey).toBeInstanceOf(Buffer);
        expect(generated.plaintextKey).toHaveLength(32);
        expect(generated.keyArn).toBe(subject.keyA.arn);
        expect(generated.wrappedKey.length).toBeGreaterThan(32);
        expect(generated.wrappedKey.includes(generated.plaintextKey)).toBe(false);

        const unwrapped = await provider.decryptDataKey(generated.wrappedKey, generated.keyArn, CONTEXT);
        expect(unwrapped.plaintextKey.equals(generated.plaintextKey)).toBe(true);
        expect(unwrapped.keyArn).toBe(subject.keyA.arn);
      });

      it('returns a fresh data key on every call', async () => {
        const first = await provider.generateDataKey(subject.keyA.arn, CONTEXT);
        const second = await provider.generateDataKey(subject.keyA.arn, CONTEXT);
        expect(first.plaintextKey.equals(second.plaintextKey)).toBe(false);
      });

      it('accepts the key as ARN, key id or alias for decrypt', async () => {
        const { wrappedKey, plaintextKey } = await provider.generateDataKey(subject.keyA.keyId, CONTEXT);
        for (const keyId of [subject.keyA.arn, subject.keyA.keyId, subject.keyA.alias]) {
          const unwrapped = await provider.decryptDataKey(wrappedKey, keyId, CONTEXT);
          expect(unwrapped.plaintextKey.equals(plaintextKey)).toBe(true);
        }
      });

      it('carries a requestId on every result', async () => {
        const generated = await provider.generateDataKey(subject.keyA.alias, CONTEXT);
        const unwrapped = await provider.decryptDataKey(generated.wrappedKey, generated.keyArn, CONTEXT);
        const rewrapped = await provider.reEncryptDataKey(
          generated.wrappedKey,
          generated.keyArn,
          CONTEXT,
          subject.keyB.arn,
          CONTEXT,
        );
        const described = await provider.describeKey(subject.keyA.alias);
        for (const result of [generated, unwrapped, rewrapped, described]) {
          expect(typeof result.requestId).toBe('string');
          expect(result.requestId.length).toBeGreaterThan(0);
        }
      });
    });

    describe('encryption context binding', () => {
      it('ignores the order of context pairs, as KMS does', async () => {
        const { wrappedKey, keyArn, plaintextKey } = await provider.generateDataKey(subject.keyA.alias, { a: '1', b: '2' });
        const unwrapped = await provider.decryptDataKey(wrappedKey, keyArn, { b: '2', a: '1' });
        expect(unwrapped.plaintextKey.equals(plaintextKey)).toBe(true);
      });

      it.each([
        ['a changed value', { tenant: 'other', purpose: 'contract-test' }],
        ['a missing pair', { tenant: 'acme' }],
        ['an extra pair', { ...CONTEXT, extra: 'x' }],
        ['no context at all', {}],
        ['a renamed key', { tenantX: 'acme', purpose: 'contract-test' }],
      ])('refuses %s with InvalidCiphertext', async (_label, wrongContext: EncryptionContext) => {
        const { wrappedKey, keyArn } = await provider.generateDataKey(subject.keyA.alias, CONTEXT);
        await expectKmsError(provider.decryptDataKey(wrappedKey, keyArn, wrongContext), 'InvalidCiphertext');
      });

      it('refuses a context where none was bound', async () => {
        const { wrappedKey, keyArn } = await provider.generateDataKey(subject.keyA.alias, {});
        await expectKmsError(provider.decryptDataKey(wrappedKey, keyArn, { tenant: 'acme' }), 'InvalidCiphertext');
      });
    });

    describe('key identity', () => {
      it('refuses to decrypt with a key other than the one that wrapped (InvalidCiphertext)', async () => {
        const { wrappedKey } = await provider.generateDataKey(subject.keyA.alias, CONTEXT);
        await expectKmsError(provider.decryptDataKey(wrappedKey, subject.keyB.arn, CONTEXT), 'InvalidCiphertext');
      });

      it('reports an unknown key, alias or ARN as KeyNotFound', async () => {
        await expectKmsError(provider.generateDataKey(subject.unknownKeyId, CONTEXT), 'KeyNotFound');
        await expectKmsError(provider.generateDataKey('alias/no-such-alias', CONTEXT), 'KeyNotFound');
        await expectKmsError(provider.describeKey(subject.unknownKeyId), 'KeyNotFound');
        await expectKmsError(provider.describeKey('alias/no-such-alias'), 'KeyNotFound');
        const { wrappedKey } = await provider.generateDataKey(subject.keyA.alias, CONTEXT);
        await expectKmsError(provider.decryptDataKey(wrappedKey, subject.unknownKeyId, CONTEXT), 'KeyNotFound');
      });

      it('rejects malformed key ids as InvalidRequest before any lookup', async () => {
        await expectKmsError(provider.generateDataKey('', CONTEXT), 'InvalidRequest');
        await expectKmsError(provider.describeKey('alias/has space'), 'InvalidRequest');
        await expectKmsError(provider.describeKey(`alias/${'x'.repeat(2100)}`), 'InvalidRequest');
      });

      it('resolves an alias, a key id and an ARN to the same key via describeKey', async () => {
        for (const keyId of [subject.keyA.alias, subject.keyA.keyId, subject.keyA.arn]) {
          const description = await provider.describeKey(keyId);
          expect(description).toMatchObject({ keyArn: subject.keyA.arn, enabled: true, state: 'Enabled' });
        }
        expect((await provider.describeKey(subject.keyB.alias)).keyArn).toBe(subject.keyB.arn);
      });

      it('lists the aliases with their key ARNs', async () => {
        const aliases = await provider.listAliases();
        for (const [aliasName, keyArn] of Object.entries(subject.expectedAliases)) {
          const alias = aliases.find((entry) => entry.aliasName === aliasName);
          expect(alias, aliasName).toBeDefined();
          expect(alias?.keyArn).toBe(keyArn);
          expect(alias?.aliasArn.endsWith(`:${aliasName}`)).toBe(true);
        }
      });
    });

    describe('reEncryptDataKey', () => {
      it('moves a data key to another key and context without changing it', async () => {
        const generated = await provider.generateDataKey(subject.keyA.alias, CONTEXT);
        const newContext = { tenant: 'acme', purpose: 'rewrapped' };
        const rewrapped = await provider.reEncryptDataKey(
          generated.wrappedKey,
          generated.keyArn,
          CONTEXT,
          subject.keyB.alias,
          newContext,
        );
        expect(rewrapped.keyArn).toBe(subject.keyB.arn);
        expect(rewrapped.wrappedKey.equals(generated.wrappedKey)).toBe(false);

        const unwrapped = await provider.decryptDataKey(rewrapped.wrappedKey, subject.keyB.arn, newContext);
        expect(unwrapped.plaintextKey.equals(generated.plaintextKey)).toBe(true);
        await expectKmsError(provider.decryptDataKey(rewrapped.wrappedKey, subject.keyA.arn, newContext), 'InvalidCiphertext');
        await expectKmsError(provider.decryptDataKey(rewrapped.wrappedKey, subject.keyB.arn, CONTEXT), 'InvalidCiphertext');
      });

      it('refuses a wrong source context', async () => {
        const generated = await provider.generateDataKey(subject.keyA.alias, CONTEXT);
        await expectKmsError(
          provider.reEncryptDataKey(generated.wrappedKey, generated.keyArn, { tenant: 'other' }, subject.keyB.arn, CONTEXT),
          'InvalidCiphertext',
        );
      });

      it('reports an unknown destination key as KeyNotFound', async () => {
        const generated = await provider.generateDataKey(subject.keyA.alias, CONTEXT);
        await expectKmsError(
          provider.reEncryptDataKey(generated.wrappedKey, generated.keyArn, CONTEXT, subject.unknownKeyId, CONTEXT),
          'KeyNotFound',
        );
      });
    });

    describe('garbage wrapped keys', () => {
      // Chosen to be garbage for every provider. local-kms panics (and drops the connection)
      // on some garbage shapes, see aws.test.ts; these avoid those shapes: first byte < 250,
      // and either too short for its header or long enough for a GCM nonce.
      const garbage = (): [string, Buffer][] => {
        const random = randomBytes(6144);
        random[0] = 0x10;
        random.writeUInt32LE(0xfffffff0, 1 + 0x10); // a key "version" no key has
        return [
          ['a single zero byte', Buffer.from([0])],
          ['short text', Buffer.from('not a ciphertext')],
          ['6 KiB of random bytes', random],
        ];
      };

      it('answers InvalidCiphertext for each', async () => {
        for (const [label, blob] of garbage()) {
          const error = await expectKmsError(provider.decryptDataKey(blob, subject.keyA.arn, CONTEXT), 'InvalidCiphertext');
          expect(error.message, label).not.toContain(blob.toString('base64'));
        }
      });

      it('answers InvalidCiphertext for a real blob with its tag flipped or truncated', async () => {
        const { wrappedKey, keyArn } = await provider.generateDataKey(subject.keyA.alias, CONTEXT);
        const flipped = Buffer.from(wrappedKey);
        flipped[flipped.length - 1] = (flipped[flipped.length - 1] ?? 0) ^ 0x01;
        await expectKmsError(provider.decryptDataKey(flipped, keyArn, CONTEXT), 'InvalidCiphertext');
        await expectKmsError(provider.decryptDataKey(wrappedKey.subarray(0, -1), keyArn, CONTEXT), 'InvalidCiphertext');
      });
    });
  });
}
