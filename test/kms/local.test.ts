/**
 * LocalKeyProvider behaviour beyond the shared contract: the keystore file (creation,
 * permissions, restart, corruption), key states, and what local-kms cannot show.
 */
import { randomUUID } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LOCAL_ARN_PREFIX, LocalKeyProvider, KeystoreError } from '../../src/kms/local.js';
import { createKeystoreExclusive, readKeystore } from '../../src/kms/local-keystore.js';
import { expectKmsError } from './kms-assert.js';

const CONTEXT = { tenant: 'acme' };
const posix = process.platform !== 'win32';

let dir: string;
let path: string;
const open: LocalKeyProvider[] = [];

function openProvider(): LocalKeyProvider {
  const provider = new LocalKeyProvider({ path });
  open.push(provider);
  return provider;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kms-local-'));
  path = join(dir, 'nested', 'keystore.json');
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((provider) => provider.close()));
  rmSync(dir, { recursive: true, force: true });
});

describe('keystore file', () => {
  it.runIf(posix)('is created on first start with mode 0600 in a 0700 directory', () => {
    openProvider();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'nested')).mode & 0o777).toBe(0o700);
    // No temp files left behind by the atomic create.
    expect(readFileSync(path, 'utf8')).toContain('"envelope-service/local-keystore"');
  });

  it('creates alias/default once; restart keeps the key and old wrapped keys still decrypt', async () => {
    const first = openProvider();
    const defaultKey = await first.describeKey('alias/default');
    expect(defaultKey.keyArn.startsWith(`${LOCAL_ARN_PREFIX}key/`)).toBe(true);
    const generated = await first.generateDataKey('alias/default', CONTEXT);
    await first.close();
    const bytesBefore = readFileSync(path);

    const second = openProvider();
    expect((await second.describeKey('alias/default')).keyArn).toBe(defaultKey.keyArn);
    expect(await second.listAliases()).toHaveLength(1);
    const unwrapped = await second.decryptDataKey(generated.wrappedKey, generated.keyArn, CONTEXT);
    expect(unwrapped.plaintextKey.equals(generated.plaintextKey)).toBe(true);
    // Opening is read-only: the file is not rewritten.
    expect(readFileSync(path).equals(bytesBefore)).toBe(true);
  });

  it('persists admin changes (keys, aliases, states) across restart', async () => {
    const first = openProvider();
    const key = await first.createKey();
    await first.createAlias('alias/app/orders', key.keyId);
    await first.disableKey(key.keyArn);
    await first.close();

    const second = openProvider();
    expect(await second.describeKey('alias/app/orders')).toMatchObject({ keyArn: key.keyArn, state: 'Disabled', enabled: false });
    expect((await second.listAliases()).map((alias) => alias.aliasName).sort()).toEqual(['alias/app/orders', 'alias/default']);
  });

  it('never replaces an existing file when another process created it first', () => {
    openProvider();
    const before = readFileSync(path);
    const other = readKeystore(path);
    expect(other).toBeDefined();
    expect(createKeystoreExclusive(path, other!)).toBe(false);
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  describe('refuses to start, leaving the file untouched, when the keystore is', () => {
    const corruptions: [string, (valid: Record<string, unknown>) => string][] = [
      ['not JSON', () => '{"format": "envelope-service/local-keystore", "vers'],
      ['empty', () => ''],
      ['a JSON array', () => '[]'],
      ['of another schema version', (valid) => JSON.stringify({ ...valid, version: 2 })],
      ['of another format', (valid) => JSON.stringify({ ...valid, format: 'something-else' })],
      ['carrying unknown fields', (valid) => JSON.stringify({ ...valid, extra: true })],
      [
        'holding a short master key',
        (valid) =>
          JSON.stringify({
            ...valid,
            keys: (valid.keys as Record<string, unknown>[]).map((key) => ({ ...key, keyMaterial: 'AAAA' })),
          }),
      ],
      [
        'holding an unknown key state',
        (valid) =>
          JSON.stringify({
            ...valid,
            keys: (valid.keys as Record<string, unknown>[]).map((key) => ({ ...key, keyState: 'Enabledish' })),
          }),
      ],
      [
        'pointing an alias at a missing key',
        (valid) => JSON.stringify({ ...valid, aliases: [{ aliasName: 'alias/default', targetKeyId: randomUUID() }] }),
      ],
    ];

    it.each(corruptions)('%s', async (_label, corrupt) => {
      const provider = openProvider();
      await provider.close();
      const valid = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
      writeFileSync(path, corrupt(valid), { mode: 0o600 });
      const bytes = readFileSync(path);

      expect(() => new LocalKeyProvider({ path })).toThrow(KeystoreError);
      expect(readFileSync(path).equals(bytes)).toBe(true);
    });

    it('a file whose error message would echo key material: it does not', async () => {
      openProvider();
      const valid = JSON.parse(readFileSync(path, 'utf8')) as { keys: { keyMaterial: string }[] };
      const material = valid.keys[0]!.keyMaterial;
      writeFileSync(path, JSON.stringify({ ...valid, keys: [{ ...valid.keys[0], keyMaterial: `${material}!!` }] }), {
        mode: 0o600,
      });
      let message = '';
      try {
        new LocalKeyProvider({ path });
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toMatch(/keyMaterial/);
      expect(message).not.toContain(material);
    });

    it.runIf(posix)('readable by group or others (permissions widened)', async () => {
      await openProvider().close();
      chmodSync(path, 0o644);
      const bytes = readFileSync(path);
      expect(() => new LocalKeyProvider({ path })).toThrow(/chmod 600/);
      expect(readFileSync(path).equals(bytes)).toBe(true);
      expect(statSync(path).mode & 0o777).toBe(0o644);
    });
  });

  describe('refuses a keystore another user could swap (as ssh StrictModes does)', () => {
    const root = process.getuid?.() === 0;

    it.runIf(posix)('its directory writable by group or others, before the file is even created', () => {
      for (const mode of [0o777, 0o770, 0o1777]) {
        rmSync(join(dir, 'nested'), { recursive: true, force: true });
        mkdirSync(join(dir, 'nested'));
        chmodSync(join(dir, 'nested'), mode);
        expect(() => new LocalKeyProvider({ path })).toThrow(/nested has mode .*group or others can write it/);
        expect(existsSync(path)).toBe(false);
      }
    });

    it.runIf(posix)('an existing keystore whose directory was opened up to others', async () => {
      await openProvider().close();
      const bytes = readFileSync(path);
      chmodSync(join(dir, 'nested'), 0o757);
      expect(() => new LocalKeyProvider({ path })).toThrow(/chmod go-w/);
      expect(readFileSync(path).equals(bytes)).toBe(true);
    });

    it.runIf(posix)('a directory above it writable by others without the sticky bit', async () => {
      await openProvider().close();
      chmodSync(dir, 0o777);
      expect(() => new LocalKeyProvider({ path })).toThrow(new RegExp(`directory ${dir} has mode 0777`));
      // With the sticky bit (as /tmp has), others cannot rename what is ours: accepted.
      chmodSync(dir, 0o1777);
      openProvider();
    });

    it.runIf(posix)('a symlinked keystore is judged where the file really is', async () => {
      const elsewhere = join(dir, 'elsewhere');
      mkdirSync(elsewhere, { mode: 0o700 });
      const target = join(elsewhere, 'keystore.json');
      await new LocalKeyProvider({ path: target }).close();
      mkdirSync(join(dir, 'nested'), { mode: 0o700 });
      symlinkSync(target, path);
      openProvider();
      chmodSync(elsewhere, 0o777);
      expect(() => new LocalKeyProvider({ path })).toThrow(/elsewhere has mode 0777/);
    });

    it.runIf(posix && root)('a file or directory owned by another user (not root)', async () => {
      await openProvider().close();
      chownSync(path, 65534, 65534);
      expect(() => new LocalKeyProvider({ path })).toThrow(/owned by uid 65534, not by this process's user/);
      chownSync(path, 0, 0);
      chownSync(join(dir, 'nested'), 65534, 65534);
      expect(() => new LocalKeyProvider({ path })).toThrow(/nested is owned by uid 65534/);
    });
  });
});

describe('key states', () => {
  it('disabled key -> KeyDisabled for use, visible in describeKey, usable again once enabled', async () => {
    const provider = openProvider();
    const key = await provider.createKey();
    const other = await provider.createKey();
    const generated = await provider.generateDataKey(key.keyId, CONTEXT);
    await provider.disableKey(key.keyId);

    expect(await provider.describeKey(key.keyArn)).toMatchObject({ enabled: false, state: 'Disabled' });
    await expectKmsError(provider.generateDataKey(key.keyId, CONTEXT), 'KeyDisabled');
    await expectKmsError(provider.decryptDataKey(generated.wrappedKey, key.keyArn, CONTEXT), 'KeyDisabled');
    await expectKmsError(
      provider.reEncryptDataKey(generated.wrappedKey, key.keyArn, CONTEXT, other.keyArn, CONTEXT),
      'KeyDisabled',
    );
    const fromOther = await provider.generateDataKey(other.keyId, CONTEXT);
    await expectKmsError(
      provider.reEncryptDataKey(fromOther.wrappedKey, other.keyArn, CONTEXT, key.keyArn, CONTEXT),
      'KeyDisabled',
    );

    await provider.enableKey(key.keyId);
    const unwrapped = await provider.decryptDataKey(generated.wrappedKey, key.keyArn, CONTEXT);
    expect(unwrapped.plaintextKey.equals(generated.plaintextKey)).toBe(true);
  });

  it('pending deletion -> KeyUnavailableState; cancelling leaves it Disabled, as KMS does', async () => {
    const provider = openProvider();
    const key = await provider.createKey();
    const generated = await provider.generateDataKey(key.keyId, CONTEXT);
    const scheduled = await provider.scheduleKeyDeletion(key.keyId, 7);
    expect(scheduled.state).toBe('PendingDeletion');
    expect(Date.parse(scheduled.deletionDate ?? '')).toBeGreaterThan(Date.now() + 6 * 86_400_000);

    expect(await provider.describeKey(key.keyId)).toMatchObject({ enabled: false, state: 'PendingDeletion' });
    await expectKmsError(provider.generateDataKey(key.keyId, CONTEXT), 'KeyUnavailableState');
    await expectKmsError(provider.decryptDataKey(generated.wrappedKey, key.keyArn, CONTEXT), 'KeyUnavailableState');
    await expectKmsError(provider.enableKey(key.keyId), 'KeyUnavailableState');
    await expectKmsError(provider.createAlias('alias/doomed', key.keyId), 'KeyUnavailableState');

    expect((await provider.cancelKeyDeletion(key.keyId)).state).toBe('Disabled');
    await provider.enableKey(key.keyId);
    await provider.decryptDataKey(generated.wrappedKey, key.keyArn, CONTEXT);
  });
});

describe('aliases (admin)', () => {
  it('validates names and targets like KMS', async () => {
    const provider = openProvider();
    const key = await provider.createKey();
    await expectKmsError(provider.createAlias('alias/default', key.keyId), 'InvalidRequest');
    await expectKmsError(provider.createAlias('alias/aws/s3', key.keyId), 'InvalidRequest');
    await expectKmsError(provider.createAlias('no-prefix', key.keyId), 'InvalidRequest');
    await expectKmsError(provider.createAlias('alias/x', 'alias/default'), 'InvalidRequest');
    await expectKmsError(provider.createAlias('alias/x', randomUUID()), 'KeyNotFound');
  });

  it('updateAlias repoints an alias; data keys stay bound to the key, not the alias', async () => {
    const provider = openProvider();
    const key = await provider.createKey();
    const before = await provider.generateDataKey('alias/default', CONTEXT);
    await provider.updateAlias('alias/default', key.keyArn);
    expect((await provider.describeKey('alias/default')).keyArn).toBe(key.keyArn);
    await expectKmsError(provider.decryptDataKey(before.wrappedKey, 'alias/default', CONTEXT), 'InvalidCiphertext');
    await provider.decryptDataKey(before.wrappedKey, before.keyArn, CONTEXT);
  });
});

describe('what only the local provider can show', () => {
  it('distinguishes contexts that concatenate alike ({a: "bc"} vs {ab: "c"})', async () => {
    // local-kms builds its AAD by plain concatenation of sorted keys and values, so it cannot
    // tell these apart; KMS documents exact-match semantics, which length prefixes give us.
    const provider = openProvider();
    const { wrappedKey, keyArn } = await provider.generateDataKey('alias/default', { a: 'bc' });
    await expectKmsError(provider.decryptDataKey(wrappedKey, keyArn, { ab: 'c' }), 'InvalidCiphertext');
    await expectKmsError(provider.decryptDataKey(wrappedKey, keyArn, { a: 'b', c: '' }), 'InvalidCiphertext');
  });

  it('refuses a wrong key id on reEncrypt too (local-kms ignores SourceKeyId)', async () => {
    const provider = openProvider();
    const other = await provider.createKey();
    const { wrappedKey } = await provider.generateDataKey('alias/default', CONTEXT);
    await expectKmsError(
      provider.reEncryptDataKey(wrappedKey, other.keyArn, CONTEXT, other.keyArn, CONTEXT),
      'InvalidCiphertext',
    );
  });

  it('gives every call, failed or not, its own UUID requestId', async () => {
    const provider = openProvider();
    const ids = new Set<string>();
    for (let i = 0; i < 5; i += 1) ids.add((await provider.generateDataKey('alias/default', CONTEXT)).requestId);
    const failure = await expectKmsError(provider.describeKey(randomUUID()), 'KeyNotFound');
    ids.add(failure.requestId ?? '');
    expect(ids.size).toBe(6);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('refuses a non-Buffer wrapped key and keys of other regions/accounts', async () => {
    const provider = openProvider();
    const keyArn = (await provider.describeKey('alias/default')).keyArn;
    await expectKmsError(provider.decryptDataKey('abc' as unknown as Buffer, keyArn, CONTEXT), 'InvalidCiphertext');
    const foreign = keyArn.replace(':local:000000000000:', ':eu-west-2:111122223333:');
    await expectKmsError(provider.describeKey(foreign), 'KeyNotFound');
  });

  it('close() zeroes master keys and later calls fail as Unavailable', async () => {
    const provider = openProvider();
    await provider.close();
    await expectKmsError(provider.generateDataKey('alias/default', CONTEXT), 'Unavailable');
    await expectKmsError(provider.listAliases(), 'Unavailable');
  });
});

describe('keystore location problems', () => {
  // (An unwritable directory fails the same way; not tested because these machines run as root.)
  it('a path whose parent is a file is a KeystoreError at construction', () => {
    writeFileSync(join(dir, 'file'), '');
    expect(() => new LocalKeyProvider({ path: join(dir, 'file', 'ks.json') })).toThrow(KeystoreError);
  });
});
