/**
 * Config -> KeyProvider. `local` (the default) is the embedded keystore provider; `aws` talks
 * to AWS KMS, or to KMS_ENDPOINT when set (local-kms, a VPC endpoint, a proxy).
 * Construction errors (a bad keystore, say) propagate: the process must not start without keys.
 */
import { kmsEndpointFor, type Config } from '../config.js';
import { AwsKmsProvider } from './aws.js';
import { LocalKeyProvider } from './local.js';
import type { ProviderLogger } from './logger.js';
import type { KeyProvider } from './provider.js';

export function createKeyProvider(config: Config, logger?: ProviderLogger): KeyProvider {
  switch (config.KMS_PROVIDER) {
    case 'local':
      return new LocalKeyProvider({ path: config.LOCAL_KEYSTORE, ...(logger ? { logger } : {}) });
    case 'aws':
      return createRegionalProvider(config, config.AWS_REGION!, logger);
  }
}

/** An AWS KMS client for `region` (a key set's key there): KMS_ENDPOINT_<REGION>, else KMS_ENDPOINT, else AWS's. */
export function createRegionalProvider(config: Config, region: string, logger?: ProviderLogger): KeyProvider {
  const KMS_ENDPOINT = kmsEndpointFor(config, region);
  return new AwsKmsProvider({ settings: { ...config, AWS_REGION: region, ...(KMS_ENDPOINT ? { KMS_ENDPOINT } : { KMS_ENDPOINT: undefined }) }, ...(logger ? { logger } : {}) });
}
