/**
 * A KeyProvider decorator that counts and times every KMS call for Prometheus. Kept apart from
 * the providers so both (and any future one) are measured the same way.
 */
import { isKmsError } from './errors.js';
import type { KeyProvider, KmsOperation } from './provider.js';
import type { ServiceMetrics } from '../metrics/metrics.js';

export function instrumentProvider(provider: KeyProvider, metrics: ServiceMetrics): KeyProvider {
  const timed = async <T>(operation: KmsOperation, call: () => Promise<T>): Promise<T> => {
    const stop = metrics.kmsDuration.startTimer({ operation });
    try {
      const result = await call();
      metrics.kmsRequests.inc({ operation, outcome: 'ok' });
      return result;
    } catch (error) {
      metrics.kmsRequests.inc({ operation, outcome: isKmsError(error) ? error.code : 'error' });
      throw error;
    } finally {
      stop();
    }
  };
  return {
    kind: provider.kind,
    generateDataKey: (keyId, context) => timed('GenerateDataKey', () => provider.generateDataKey(keyId, context)),
    decryptDataKey: (wrapped, keyId, context) => timed('Decrypt', () => provider.decryptDataKey(wrapped, keyId, context)),
    reEncryptDataKey: (wrapped, source, sourceContext, destination, destinationContext) =>
      timed('ReEncrypt', () => provider.reEncryptDataKey(wrapped, source, sourceContext, destination, destinationContext)),
    describeKey: (keyId) => timed('DescribeKey', () => provider.describeKey(keyId)),
    listAliases: () => timed('ListAliases', () => provider.listAliases()),
    close: () => provider.close(),
  };
}
