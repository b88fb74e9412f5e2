/**
 * The local provider's audit signer: an ECDSA P-256 key kept in the local keystore, next to
 * the master keys, so dev mode writes and verifies checkpoints exactly as production does.
 * A keystore without one (written before checkpoints existed) gets one on first use.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import type { AuditSignature, AuditSigner } from './signer.js';
import { KeystoreError, readKeystore, saveKeystore, type StoredSigningKey } from '../kms/local-keystore.js';
import { LOCAL_ARN_PREFIX } from '../kms/local.js';

export class LocalAuditSigner implements AuditSigner {
  readonly algorithm = 'ECDSA_SHA_256' as const;
  readonly keyId: string;
  readonly keyArn: string;
  private readonly privateKey: KeyObject;

  private constructor(stored: StoredSigningKey) {
    this.keyArn = `${LOCAL_ARN_PREFIX}key/${stored.keyId}`;
    this.keyId = this.keyArn;
    this.privateKey = createPrivateKey({ key: stored.privateKey, format: 'der', type: 'pkcs8' });
  }

  /**
   * Loads the keystore's signing key, creating it if the keystore has none. `configuredKeyId`
   * (AUDIT_SIGNING_KEY_ID), when set, must name that key (its id or ARN).
   * @throws KeystoreError
   */
  static open(keystorePath: string, configuredKeyId?: string): LocalAuditSigner {
    const stored = ensureSigningKey(keystorePath);
    const signer = new LocalAuditSigner(stored);
    if (configuredKeyId !== undefined && configuredKeyId !== stored.keyId && configuredKeyId !== signer.keyArn) {
      throw new KeystoreError(
        `AUDIT_SIGNING_KEY_ID=${configuredKeyId} is not the local keystore's signing key (${signer.keyArn}); unset it to use that key`,
      );
    }
    return signer;
  }

  async sign(message: Buffer): Promise<AuditSignature> {
    return {
      signature: sign('sha256', message, { key: this.privateKey, dsaEncoding: 'der' }),
      keyArn: this.keyArn,
      algorithm: this.algorithm,
      kmsRequestId: randomUUID(),
    };
  }

  async publicKey(): Promise<string> {
    return createPublicKey(this.privateKey).export({ format: 'pem', type: 'spki' }).toString();
  }
}

function ensureSigningKey(path: string): StoredSigningKey {
  const data = readKeystore(path);
  if (!data) throw new KeystoreError(`local keystore ${path} does not exist (the local provider creates it first)`);
  if (data.signingKey) return data.signingKey;
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const signingKey: StoredSigningKey = {
    keyId: randomUUID(),
    keySpec: 'ECC_NIST_P256',
    privateKey: privateKey.export({ format: 'der', type: 'pkcs8' }),
    creationDate: new Date().toISOString(),
  };
  saveKeystore(path, { ...data, signingKey });
  // Read back: the key in the file is the one verifiers will be given.
  const saved = readKeystore(path)?.signingKey;
  if (!saved) throw new KeystoreError(`local keystore ${path}: the signing key was not saved`);
  return saved;
}
