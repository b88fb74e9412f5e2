/**
 * Encrypt: authorize the caller on the key it names and the context it gives, then seal the
 * payload under a (cached) data key. Shared by /v1/encrypt, its binary form and batch items.
 */
import { toCiphertextString } from '../format/format.js';
import type { EnvelopeResult } from '../keys/envelope-service.js';
import { withFacts, type AuditFacts, type Outcome, type Caller, type OperationDeps } from './operation.js';
import { validContext } from './context.js';
import { keySetNameOf } from '../keys/key-sets.js';
import type { KeySetDataKey } from '../keys/key-set-data-key.js';
import type { KeySetAuditDetails } from './audit-facts.js';

export type { EnvelopeResult };

/** What an encrypt needs, decoded. The caller owns (and zeroes) `plaintext`. */
export interface EncryptInput {
  plaintext: Buffer;
  keyId: string | undefined;
  context: Readonly<Record<string, string>> | undefined;
  aad: Buffer | undefined;
}

/** Encrypts to the text form (`ev1:` + base64url), as the JSON API carries it. */
export function encrypt(deps: OperationDeps, caller: Caller, input: EncryptInput): Promise<Outcome<{ ciphertext: string; keyId: string }>> {
  return withFacts(caller, async (facts) => {
    const result = await seal(deps, caller, input, facts);
    const ciphertext = toCiphertextString(result.envelope);
    facts.responseElements = { keyId: facts.resolvedKeyId, ciphertextBytes: ciphertext.length };
    return { ciphertext, keyId: result.keyArn };
  });
}

/** Encrypts to the binary envelope itself, as the binary API carries it. */
export function encryptToEnvelope(deps: OperationDeps, caller: Caller, input: EncryptInput): Promise<Outcome<EnvelopeResult>> {
  return withFacts(caller, async (facts) => {
    const result = await seal(deps, caller, input, facts);
    facts.responseElements = { keyId: facts.resolvedKeyId, ciphertextBytes: result.envelope.length };
    return result;
  });
}

async function seal(deps: OperationDeps, caller: Caller, input: EncryptInput, facts: AuditFacts): Promise<EnvelopeResult> {
  const context = validContext(input.context);
  const keyId = input.keyId ?? deps.defaultKeyId;
  const plaintextBytes = input.plaintext.length;
  facts.requestParameters = { keyId, encryptionContext: context, aadBytes: input.aad?.length, plaintextBytes };
  const keySetName = keySetNameOf(keyId);
  if (keySetName !== undefined) {
    const set = deps.guard.authorizeKeySet(caller.policy, caller.principal, 'encrypt', keySetName, deps.keySets.get(keySetName), context, plaintextBytes);
    facts.resolvedKeyId = keyId;
    facts.ruleId = set.ruleId;
    const result = await deps.envelope.encryptUnderSet(set, input.plaintext, context, input.aad, caller.kms);
    facts.dataKey = result.dataKey;
    facts.keySet = keySetFacts(deps, set.name, result.keySet!, !result.dataKey.cacheHit);
    return result;
  }
  const { keyArn, ruleId } = await deps.guard.authorizeRequestedKey(caller.policy, caller.principal, 'encrypt', keyId, context, plaintextBytes, caller.kms);
  facts.resolvedKeyId = keyArn;
  facts.ruleId = ruleId;
  const result = await deps.envelope.encryptToEnvelope(keyArn, input.plaintext, context, input.aad, caller.kms);
  facts.dataKey = result.dataKey;
  return result;
}

/** The audit facts of a key set's data key; `made`: this request's KMS calls made it (counted once). */
export function keySetFacts(deps: Pick<OperationDeps, 'regions' | 'keySetEvents'>, name: string, made: KeySetDataKey, fresh: boolean): KeySetAuditDetails {
  const region = deps.regions.regionOf(made.generatedBy);
  if (fresh) deps.keySetEvents?.dataKeyMade(name, region, made.missingKeys.length === 0);
  return {
    name,
    keys: made.keyBlock.wrappedKeys.map((entry) => entry.keyArn),
    ...(made.missingKeys.length > 0 && { missingKeys: made.missingKeys }),
    answeredBy: { keyArn: made.generatedBy, region },
    ...(made.failedOver.length > 0 && { failedOver: made.failedOver.map((failure) => ({ ...failure, region: deps.regions.regionOf(failure.keyArn) })) }),
  };
}
