/**
 * Config -> KeyProvider. `local` (the default) is the embedded keystore provider; `aws` talks
 * to AWS KMS, or to KMS_ENDPOINT when set (local-kms, a VPC endpoint, a proxy).
 * Construction errors (a bad keystore, say) propagate: the process must not start without keys.
 */
import type { Config } from '../config.js';
import { AwsKmsProvider } from './aws.js';
import { LocalKeyProvider } from './local.js';
import type { ProviderLogger } from './logger.js';
import type { KeyProvider } from './provider.js';

export function createKeyProvider(config: Config, logger?: ProviderLogger): KeyProvider {
  switch (config.KMS_PROVIDER) {
    case 'local':
      return new LocalKeyProvider({ path: config.LOCAL_KEYSTORE, ...(logger ? { logger } : {}) });
    case 'aws':
      return new AwsKmsProvider({ settings: config, ...(logger ? { logger } : {}) });
  }
}
