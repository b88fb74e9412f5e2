/**
 * Rewrap: move a ciphertext to another KMS key (key rotation, tenant migration). KMS ReEncrypt
 * re-wraps the data key inside KMS; the payload is never decrypted and its bytes are carried
 * over unchanged. The caller needs `rewrap` on both the source key (judged on the stored
 * context) and the destination key, and a rule granting the source must accept that
 * destination (its `rewrapTo`, or by default a key the caller may encrypt to).
 */
import type { RewrapResult } from '../keys/envelope-service.js';
import { withFacts, type Outcome, type Caller, type OperationDeps } from './operation.js';
import { assertExpectedContext, validContext } from './context.js';
import { AccessDeniedError } from './errors.js';

export interface RewrapInput {
  ciphertext: string;
  /** The destination; the default key if absent. */
  keyId: string | undefined;
  expectedContext: Readonly<Record<string, string>> | undefined;
}

export function rewrap(deps: OperationDeps, caller: Caller, input: RewrapInput): Promise<Outcome<RewrapResult>> {
  return withFacts(caller, async (facts) => {
    const { guard, envelope: service, directory } = deps;
    // A context over the limits is a bad request whatever the ciphertext holds, as on encrypt.
    if (input.expectedContext !== undefined) validContext(input.expectedContext);
    const envelope = service.parse(input.ciphertext);
    const destination = input.keyId ?? deps.defaultKeyId;
    facts.requestParameters = {
      keyId: envelope.keyArn,
      destinationKeyId: destination,
      encryptionContext: envelope.context,
      ciphertextBytes: input.ciphertext.length,
    };
    const source = await guard.authorizeStoredKey(caller.policy, caller.principal, 'rewrap', envelope.keyArn, envelope.context, undefined, caller.kms);
    assertExpectedContext(input.expectedContext, envelope.context);
    const target = await guard.authorizeRequestedKey(caller.policy, caller.principal, 'rewrap', destination, envelope.context, undefined, caller.kms);
    // The destination relative to the source: one tenant's data must not land under another's key.
    const onward = caller.policy.decideRewrapDestination(caller.principal, {
      sourceKeyNames: await directory.namesOf(envelope.keyArn, caller.kms),
      destinationKeyNames: [destination, ...(await directory.namesOf(target.keyArn, caller.kms))],
      context: envelope.context,
      plaintextBytes: envelope.body.length,
    });
    if (!onward.allowed) throw new AccessDeniedError(onward.reason);
    facts.ruleId = [...new Set([source.ruleId, target.ruleId, onward.ruleId])].join(',');
    const result = await service.rewrap(envelope, target.keyArn, caller.kms);
    facts.dataKey = result.dataKey;
    facts.responseElements = { keyId: result.keyArn, ciphertextBytes: result.ciphertext.length };
    return result;
  });
}
