/**
 * A KeyProvider decorator that counts and times every KMS call for Prometheus. It lives with
 * the metrics, not with the providers: kms/ knows nothing of metrics, and every provider (and
 * any future one) is measured the same way.
 */
import { decorateProvider } from '../kms/decorate.js';
import { isKmsError } from '../kms/errors.js';
import type { KeyProvider } from '../kms/provider.js';
import type { ServiceMetrics } from './metrics.js';

/** `region`: the region this provider's client serves (kms_region_requests_total). */
export function instrumentProvider(provider: KeyProvider, metrics: ServiceMetrics, region = 'default'): KeyProvider {
  return decorateProvider(provider, async (operation, call) => {
    const stop = metrics.kmsDuration.startTimer({ operation });
    try {
      const result = await call();
      metrics.kmsRequests.inc({ operation, outcome: 'ok' });
      metrics.kmsRegionRequests.inc({ region, operation, outcome: 'ok' });
      return result;
    } catch (error) {
      const outcome = isKmsError(error) ? error.code : 'error';
      metrics.kmsRequests.inc({ operation, outcome });
      metrics.kmsRegionRequests.inc({ region, operation, outcome });
      throw error;
    } finally {
      stop();
    }
  });
}
