/**
 * The one way to wrap a KeyProvider: `around(operation, call)` is given every KMS operation of
 * the interface, by name, and decides what happens around the real call (time it, refuse it,
 * count it). Wrappers written this way cannot forget an operation or name one wrongly, and a
 * new operation added to KeyProvider is added here once. close() is passed straight through:
 * it is not a KMS call.
 */
import type { KeyProvider, KmsOperation } from './provider.js';

export type AroundKmsCall = <T>(operation: KmsOperation, call: () => Promise<T>) => Promise<T>;

export function decorateProvider(provider: KeyProvider, around: AroundKmsCall): KeyProvider {
  return {
    kind: provider.kind,
    generateDataKey: (keyId, context) => around('GenerateDataKey', () => provider.generateDataKey(keyId, context)),
    decryptDataKey: (wrapped, keyId, context) => around('Decrypt', () => provider.decryptDataKey(wrapped, keyId, context)),
    reEncryptDataKey: (wrapped, source, sourceContext, destination, destinationContext) =>
      around('ReEncrypt', () => provider.reEncryptDataKey(wrapped, source, sourceContext, destination, destinationContext)),
    encryptDataKey: (plaintextKey, keyId, context) => around('Encrypt', () => provider.encryptDataKey(plaintextKey, keyId, context)),
    describeKey: (keyId) => around('DescribeKey', () => provider.describeKey(keyId)),
    listAliases: () => around('ListAliases', () => provider.listAliases()),
    close: () => provider.close(),
  };
}
