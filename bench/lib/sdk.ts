/**
 * The AWS Encryption SDK for JavaScript (@aws-crypto/client-node 5.0.2) set up the way its
 * docs recommend for data-key caching: a NodeCachingMaterialsManager over a keyring, with the
 * same caps as this service's defaults.
 */
import {
  AlgorithmSuiteIdentifier,
  CommitmentPolicy,
  KMS,
  KmsKeyringNode,
  NodeCachingMaterialsManager,
  RawAesKeyringNode,
  RawAesWrappingSuiteIdentifier,
  buildClient,
  getLocalCryptographicMaterialsCache,
  type KeyringNode,
} from '@aws-crypto/client-node';

/** 0x0478: committing, HKDF-SHA-512, NO signature (the closest match to this service's format). */
export const SUITE_0478 = AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY;
/** 0x0578: committing, HKDF-SHA-512, ECDSA P-384 signature: the SDK's default suite. */
export const SUITE_0578 = AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY_ECDSA_P384;

export const sdk = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);

export interface CachingLimits {
  maxAgeMs: number;
  maxMessages: number;
  maxBytes: number;
  capacity: number;
}

export function cachingManager(keyring: KeyringNode, limits: CachingLimits): NodeCachingMaterialsManager {
  return new NodeCachingMaterialsManager({
    backingMaterials: keyring,
    cache: getLocalCryptographicMaterialsCache(limits.capacity),
    maxAge: limits.maxAgeMs,
    maxMessagesEncrypted: limits.maxMessages,
    maxBytesEncrypted: limits.maxBytes,
  });
}

/** A raw AES master key held in memory: no KMS and no network on either side. */
export function rawAesKeyring(masterKey: Buffer): RawAesKeyringNode {
  return new RawAesKeyringNode({
    keyNamespace: 'bench',
    keyName: 'bench-master-key',
    unencryptedMasterKey: new Uint8Array(masterKey),
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
  });
}

/** A KMS keyring whose client talks to `endpoint` and counts every command it sends. */
export function countingKmsKeyring(endpoint: string, generatorKeyArn: string): { keyring: KmsKeyringNode; calls: Record<string, number> } {
  const calls: Record<string, number> = {};
  const client = new KMS({
    endpoint,
    region: 'eu-west-2',
    credentials: { accessKeyId: 'local-kms-bench', secretAccessKey: 'local-kms-bench' },
  });
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = String(context.commandName ?? 'unknown').replace(/Command$/, '');
      calls[name] = (calls[name] ?? 0) + 1;
      return next(args);
    },
    { step: 'initialize', name: 'benchCallCounter' },
  );
  const keyring = new KmsKeyringNode({ generatorKeyId: generatorKeyArn, clientProvider: () => client });
  return { keyring, calls };
}
