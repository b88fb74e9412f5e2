/**
 * Data key: a fresh data key for callers that encrypt client-side. Wrapped only by default;
 * the plaintext key only for principals granted `datakey:plaintext`.
 */
import type { IssuedDataKey } from '../keys/envelope-service.js';
import { withFacts, type Outcome, type Caller, type OperationDeps } from './operation.js';
import { validContext } from './context.js';
import { keySetNameOf } from '../keys/key-sets.js';
import { ProblemError } from './errors.js';

export interface DataKeyInput {
  keyId: string | undefined;
  context: Readonly<Record<string, string>> | undefined;
  includePlaintext: boolean;
}

/** The caller owns (and zeroes) the returned plaintext key, if any. */
export function issueDataKey(deps: OperationDeps, caller: Caller, input: DataKeyInput): Promise<Outcome<IssuedDataKey>> {
  return withFacts(caller, async (facts) => {
    const context = validContext(input.context);
    const { includePlaintext } = input;
    const keyId = input.keyId ?? deps.defaultKeyId;
    facts.requestParameters = { keyId, encryptionContext: context, includePlaintext };
    const operation = includePlaintext ? 'datakey:plaintext' : 'datakey';
    const keySetName = keySetNameOf(keyId);
    if (keySetName !== undefined) {
      // A data key for client-side encryption is wrapped by one KMS key; a set's several wrapped
      // keys have no place in this answer. Judged by the policy first, as any key name.
      deps.guard.authorizeKeySet(caller.policy, caller.principal, operation, keySetName, deps.keySets.get(keySetName), context, undefined);
      throw new ProblemError(400, 'KeySetNotSupported', 'a data key is issued under one KMS key: name a key, not a key set');
    }
    const { keyArn, ruleId } = await deps.guard.authorizeRequestedKey(caller.policy, caller.principal, operation, keyId, context, undefined, caller.kms);
    facts.resolvedKeyId = keyArn;
    facts.ruleId = ruleId;
    const issued = await deps.envelope.issueDataKey(keyArn, context, includePlaintext, caller.kms);
    facts.dataKey = issued.dataKey;
    facts.responseElements = { keyId: issued.keyArn, wrappedKeyBytes: issued.wrappedKey.length };
    return issued;
  });
}
