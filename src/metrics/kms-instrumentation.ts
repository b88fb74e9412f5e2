/**
 * A KeyProvider decorator that counts and times every KMS call for Prometheus. It lives with
 * the metrics, not with the providers: kms/ knows nothing of metrics, and every provider (and
 * any future one) is measured the same way.
 */
import { decorateProvider } from '../kms/decorate.js';
import { isKmsError } from '../kms/errors.js';
import type { KeyProvider } from '../kms/provider.js';
import type { ServiceMetrics } from './metrics.js';

export function instrumentProvider(provider: KeyProvider, metrics: ServiceMetrics): KeyProvider {
  return decorateProvider(provider, async (operation, call) => {
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
  });
}
