/**
 * Opening a key-set ciphertext: try its wrapped keys the caller may use, in a preferred order,
 * until one unwraps its data key.
 *
 * Order: a wrapped key whose data key is cached first (no KMS call); then by region, the
 * regions of KMS_LOCAL_REGION first in their order, then the others in the block's order; a
 * region whose circuit breaker is open last (it fails fast, so trying it costs nothing, and it
 * is the only chance left when every region is down).
 *
 * A key that cannot be used now (its region down or throttled, the key disabled, deleted or
 * refused by KMS) passes to the next. Anything else stops at once: a wrapped key KMS refuses
 * as a ciphertext, or one that unwraps to a data key the ciphertext does not commit to
 * (KeyCommitmentMismatch), means the key block was tampered with, and a ciphertext with a bad
 * wrapped key is rejected whole, not read through another key.
 */
import type { KeyBlockFields } from '../format/format.js';
import { isKeyUnusable } from '../keys/key-set-data-key.js';
import type { KmsTrace } from '../keys/kms-trace.js';
import { isKmsError } from '../kms/errors.js';
import type { EncryptionContext } from '../kms/provider.js';
import type { KeySetAuditDetails } from './audit-facts.js';
import { ProblemError } from './errors.js';
import type { AuthorizedWrappedKey } from './key-guard.js';
import type { OperationDeps } from './operation.js';

export interface Unwrapped<T> {
  value: T;
  entry: KeyBlockFields;
  ruleId: string;
}

/** Orders the usable wrapped keys as described above (stable). */
export function preferredOrder(deps: Pick<OperationDeps, 'regions' | 'regionOrder' | 'envelope'>, usable: AuthorizedWrappedKey[], context: EncryptionContext): AuthorizedWrappedKey[] {
  const rank = ({ entry }: AuthorizedWrappedKey): number[] => {
    const region = deps.regions.regionOf(entry.keyArn);
    const preferred = deps.regionOrder.indexOf(region);
    return [
      deps.envelope.holdsKeyFor(entry, context) ? 0 : 1,
      deps.regions.isDown(entry.keyArn) ? 1 : 0,
      preferred === -1 ? deps.regionOrder.length : preferred,
    ];
  };
  const ranked = usable.map((candidate, index) => ({ candidate, key: [...rank(candidate), index] }));
  ranked.sort((a, b) => {
    for (let i = 0; i < a.key.length; i++) if (a.key[i] !== b.key[i]) return a.key[i]! - b.key[i]!;
    return 0;
  });
  return ranked.map(({ candidate }) => candidate);
}

/**
 * Runs `open` with each usable wrapped key in preferred order (after checking its key's state
 * in the key directory) until one succeeds; fills `details` with what was tried.
 */
export async function unwrapThroughAny<T>(
  deps: OperationDeps,
  trace: KmsTrace,
  usable: AuthorizedWrappedKey[],
  context: EncryptionContext,
  details: KeySetAuditDetails,
  open: (entry: KeyBlockFields) => Promise<T>,
): Promise<Unwrapped<T>> {
  const failures: { error: unknown }[] = [];
  for (const { entry, ruleId } of preferredOrder(deps, usable, context)) {
    const region = deps.regions.regionOf(entry.keyArn);
    try {
      // A disabled or deleted key stops decrypting within the directory's TTL, cache or not.
      await deps.directory.resolve(entry.keyArn, trace);
      const value = await open(entry);
      details.answeredBy = { keyArn: entry.keyArn, region };
      deps.keySetEvents?.unwrapped(details.name, region, failures.length > 0);
      return { value, entry, ruleId };
    } catch (error) {
      if (!isKeyUnusable(error)) throw error;
      (details.failedOver ??= []).push({ keyArn: entry.keyArn, region, error: isKmsError(error) ? error.code : 'error' });
      failures.push({ error });
    }
  }
  // Every key failed: an outage wins (retrying later may work: 503 with Retry-After), then the
  // first failure; a key unknown to KMS is a forged or foreign block, as for a single key.
  const outage = failures.find(({ error }) => isKmsError(error) && (error.code === 'Unavailable' || error.code === 'Throttled'));
  const first = (outage ?? failures[0])!.error;
  if (isKmsError(first) && first.code === 'KeyNotFound') {
    throw new ProblemError(422, 'DataKeyUnwrapFailed', 'no key named in the ciphertext is known to KMS');
  }
  throw first;
}
