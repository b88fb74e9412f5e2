/**
 * A key set's data key: one GenerateDataKey on the generator, then KMS Encrypt of the same
 * data key under every other key of the set, with the same encryption context. The cache holds
 * the result as one entry (the data key and all its wrapped keys), so a set costs its KMS
 * calls once per data key, never per message.
 *
 * onGeneratorDown decides what a key that cannot be used (its region down, throttled, the key
 * disabled or gone) does to the data key:
 * - fail (the default): every key of the set wraps every data key, or the encrypt fails (503
 *   for a region down). A ciphertext is always readable through every key of its set.
 * - next: the next key of the set generates when the generator cannot, and a key that cannot
 *   wrap is left out. Encrypts go on while any key of the set answers, but what they write is
 *   readable only through the keys that answered (missingKeys in the audit event; a rewrap to
 *   the set adds the others later), and such a data key is cached for at most
 *   KEY_SET_PARTIAL_MAX_AGE_MS so a recovered region is back in the key block soon.
 */
import type { KeyBlock, KeyBlockFields } from '../format/format.js';
import { isKmsError } from '../kms/errors.js';
import type { EncryptionContext, GeneratedDataKey, KeyProvider } from '../kms/provider.js';
import type { DataKeyMaterial } from './data-key-cache.js';
import type { KeySet } from './key-sets.js';

/** What a key set's cache entry keeps beside the key (CachedDataKey.details). */
export interface KeySetDataKey {
  keyBlock: KeyBlock & { keySet: string };
  /** The key that generated the data key. */
  generatedBy: string;
  /** Keys of the set that could not wrap it (onGeneratorDown: next only). */
  missingKeys: string[];
  /** Keys tried as generator before `generatedBy`, with the error code each gave. */
  failedOver: { keyArn: string; error: string }[];
}

const UNUSABLE = new Set(['Unavailable', 'Throttled', 'KeyDisabled', 'KeyUnavailableState', 'KeyNotFound', 'AccessDenied']);

/** A KMS error that says this key cannot be used now, not that the request is wrong. */
export function isKeyUnusable(error: unknown): boolean {
  return isKmsError(error) && UNUSABLE.has(error.code);
}

export async function makeKeySetDataKey(
  provider: KeyProvider,
  set: KeySet,
  context: EncryptionContext,
  partialMaxAgeMs: number,
): Promise<DataKeyMaterial> {
  const next = set.onGeneratorDown === 'next';
  const failedOver: KeySetDataKey['failedOver'] = [];
  let generated: GeneratedDataKey | undefined;
  let generatedBy = set.generator;
  let lastError: unknown;
  for (const keyArn of next ? set.keys : [set.generator]) {
    try {
      generated = await provider.generateDataKey(keyArn, context);
      generatedBy = keyArn;
      break;
    } catch (error) {
      if (!next || !isKeyUnusable(error)) throw error;
      failedOver.push({ keyArn, error: (error as { code: string }).code });
      lastError = error;
    }
  }
  if (!generated) throw lastError;
  const plaintextKey = generated.plaintextKey;
  const tried = new Set(failedOver.map((failure) => failure.keyArn));
  const others = set.keys.filter((keyArn) => keyArn !== generatedBy && !tried.has(keyArn));
  const settled = await Promise.allSettled(others.map((keyArn) => provider.encryptDataKey(plaintextKey, keyArn, context)));
  const wrapped = new Map<string, Buffer>([[generatedBy, generated.wrappedKey]]);
  const requestIds = [generated.requestId];
  const missingKeys = failedOver.map((failure) => failure.keyArn);
  for (const [index, result] of settled.entries()) {
    const keyArn = others[index]!;
    if (result.status === 'fulfilled') {
      wrapped.set(keyArn, result.value.wrappedKey);
      requestIds.push(result.value.requestId);
    } else if (next && isKeyUnusable(result.reason)) {
      missingKeys.push(keyArn);
    } else {
      plaintextKey.fill(0);
      throw result.reason;
    }
  }
  // The set's order (generator first): every data key of a set has the same key block layout.
  const wrappedKeys: KeyBlockFields[] = set.keys.filter((keyArn) => wrapped.has(keyArn)).map((keyArn) => ({ keyArn, wrappedKey: wrapped.get(keyArn)! }));
  const details: KeySetDataKey = { keyBlock: { keySet: set.name, wrappedKeys }, generatedBy, missingKeys, failedOver };
  return {
    keyArn: generatedBy,
    plaintextKey,
    wrappedKey: generated.wrappedKey,
    requestId: generated.requestId,
    requestIds,
    details,
    ...(missingKeys.length > 0 && { maxAgeMs: partialMaxAgeMs }),
  };
}
