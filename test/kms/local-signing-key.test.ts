/**
 * The local keystore's audit signing key: keystores written before it existed get one on
 * first use (same atomic save, 0600), the provider's own saves never drop it, and it signs
 * what its public key verifies.
 */
import { createPublicKey, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeystoreError, LocalKeyProvider } from '../../src/kms/local.js';
import { LocalAuditSigner } from '../../src/audit/signer-local.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'kms-signing-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('local audit signing key', () => {
  it('is added to an existing keystore on first use, keeping its keys, aliases and mode 0600', async () => {
    const path = join(dir, 'keystore.json');
    const provider = new LocalKeyProvider({ path });
    const key = await provider.createKey();
    const before = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    expect(before.signingKey).toBeUndefined(); // the old format: no signing key

    const signer = LocalAuditSigner.open(path);
    const after = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    expect(after.keys).toEqual(before.keys);
    expect(after.aliases).toEqual(before.aliases);
    expect(after.signingKey).toMatchObject({ keySpec: 'ECC_NIST_P256' });
    expect(statSync(path).mode & 0o777).toBe(0o600);

    // Opening again uses the same key; the provider's later admin saves keep it.
    await provider.createAlias('alias/after-signing', key.keyId);
    expect((JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>).signingKey).toEqual(after.signingKey);
    const again = LocalAuditSigner.open(path);
    expect(again.keyArn).toBe(signer.keyArn);
    await provider.close();
    // And a provider started on the new keystore reads it.
    await new LocalKeyProvider({ path }).close();

    const message = Buffer.from('{"statement":1}');
    const signed = await signer.sign(message);
    expect(signed.algorithm).toBe('ECDSA_SHA_256');
    expect(verify('sha256', message, createPublicKey(await again.publicKey()), signed.signature)).toBe(true);
  });

  it('AUDIT_SIGNING_KEY_ID, when set with the local provider, must name the keystore signing key', async () => {
    const path = join(dir, 'keystore.json');
    await new LocalKeyProvider({ path }).close();
    const signer = LocalAuditSigner.open(path);
    expect(LocalAuditSigner.open(path, signer.keyArn).keyArn).toBe(signer.keyArn);
    expect(() => LocalAuditSigner.open(path, 'alias/default')).toThrow(KeystoreError);
  });
});
