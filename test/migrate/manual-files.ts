/**
 * Files made the manual way, as old scripts did: KMS GenerateDataKey through the AWS SDK (what
 * `aws kms generate-data-key` calls), the wrapped key written as the CLI leaves it, and
 * `openssl enc -aes256 -k "$PlaintextKey"` on the payload with one derivation.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GenerateDataKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { OPENSSL_FLAGS, opensslDecrypts, opensslEncrypt } from './openssl-tool.js';

export type ManualKdf = keyof typeof OPENSSL_FLAGS;
export type KeyFileForm = 'raw' | 'base64' | 'json';

export interface ManualFile {
  /** The OpenSSL file. */
  file: string;
  /** The wrapped data key file. */
  keyFile: string;
  /** The base64 plaintext key, as the CLI prints it (the password). */
  password: string;
}

export async function generateDataKey(kms: KMSClient, keyId: string, context?: Record<string, string>): Promise<{ blob: Buffer; password: string }> {
  const out = await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context }));
  return { blob: Buffer.from(out.CiphertextBlob as Uint8Array), password: Buffer.from(out.Plaintext as Uint8Array).toString('base64') };
}

export function writeKeyFile(path: string, blob: Buffer, form: KeyFileForm): void {
  if (form === 'raw') writeFileSync(path, blob);
  else if (form === 'base64') writeFileSync(path, `${blob.toString('base64')}\n`);
  else writeFileSync(path, JSON.stringify({ CiphertextBlob: blob.toString('base64'), KeyId: 'arn:aws:kms:example', Plaintext: 'redacted' }, null, 4));
}

/**
 * Encrypts `plainPath` to `dir/name` with openssl, redrawing the salt until only `kdf` opens
 * it (openssl itself decides): a right key also fits another derivation's padding about once
 * in 128 files, which detection reports as ambiguous (documented); the tests that are not
 * about that make files where it cannot happen.
 */
export function opensslFileOnlyOpenedBy(dir: string, name: string, plainPath: string, password: string, kdf: ManualKdf): string {
  const file = join(dir, name);
  const others = (Object.keys(OPENSSL_FLAGS) as ManualKdf[]).filter((other) => other !== kdf);
  for (;;) {
    opensslEncrypt(plainPath, file, password, OPENSSL_FLAGS[kdf]);
    if (!others.some((other) => opensslDecrypts(file, join(dir, '.probe'), password, OPENSSL_FLAGS[other]))) return file;
  }
}

/** True when no derivation opens `file` with `password` (openssl's own padding check). */
export function noDerivationOpens(dir: string, file: string, password: string): boolean {
  return !(Object.keys(OPENSSL_FLAGS) as ManualKdf[]).some((kdf) => opensslDecrypts(file, join(dir, '.probe'), password, OPENSSL_FLAGS[kdf]));
}
