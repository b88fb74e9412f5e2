/**
 * Wrapped keys KMS recently refused to unwrap, by (key ARN, wrapped key, context). KMS's
 * answer to the same three is always the same, so a replayed forged or corrupt envelope is
 * answered from here (the same 422 as the first time) without a KMS call or a budget token.
 *
 * Bounded by count and by the total length of the remembered keys (each is up to ~18 KB of
 * ARN, base64 wrapped key and context), and kept briefly: a flood of *new* forgeries still
 * costs one KMS call each, charged to the sender's budget.
 */
import { LRUCache } from 'lru-cache';
import { KmsError } from '../kms/errors.js';

const MAX_ENTRIES = 10_000;
const MAX_KEY_CHARS = 4 * 1024 * 1024;
const TTL_MS = 60_000;

export class FailedUnwraps {
  private readonly failures = new LRUCache<string, string>({
    max: MAX_ENTRIES,
    maxSize: MAX_KEY_CHARS,
    sizeCalculation: (_message, partition) => Math.max(1, partition.length),
    ttl: TTL_MS,
  });

  /** Remembers `error` if it is KMS's definitive refusal to unwrap. */
  remember(partition: string, error: unknown): void {
    if (error instanceof KmsError && error.code === 'InvalidCiphertext') this.failures.set(partition, error.message);
  }

  /** Throws the remembered refusal, if there is one. */
  recall(partition: string): void {
    const message = this.failures.get(partition);
    if (message !== undefined) throw new KmsError('InvalidCiphertext', message);
  }
}
