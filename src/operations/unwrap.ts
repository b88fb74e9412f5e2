/**
 * Unwrap: the plaintext of a stored data key, for a caller that decrypts client-side (a
 * stream the `envelope` command sealed locally). Authorized like a decrypt, on the key and
 * context the caller read from the stored header, under its own grant `datakey:unwrap`: the
 * data key leaves the service, as with `datakey:plaintext`.
 */
import type { UnwrappedKey } from '../keys/envelope-service.js';
import { withFacts, type Outcome, type Caller, type OperationDeps } from './operation.js';
import { validContext } from './context.js';

export interface UnwrapInput {
  /** The KMS key named in the stored header (an ARN, or a name the directory resolves). */
  keyId: string;
  wrappedKey: Buffer;
  context: Readonly<Record<string, string>> | undefined;
}

/** The caller owns (and zeroes) the returned plaintext key. */
export function unwrapDataKey(deps: OperationDeps, caller: Caller, input: UnwrapInput): Promise<Outcome<UnwrappedKey>> {
  return withFacts(caller, async (facts) => {
    const context = validContext(input.context);
    facts.requestParameters = { keyId: input.keyId, encryptionContext: context, ciphertextBytes: input.wrappedKey.length };
    const { keyArn, ruleId } = await deps.guard.authorizeStoredKey(caller.policy, caller.principal, 'datakey:unwrap', input.keyId, context, undefined, caller.kms);
    facts.resolvedKeyId = keyArn;
    facts.ruleId = ruleId;
    const unwrapped = await deps.envelope.unwrapDataKey({ keyArn, wrappedKey: input.wrappedKey, context }, caller.kms);
    facts.dataKey = unwrapped.dataKey;
    facts.responseElements = { keyId: unwrapped.keyArn };
    return unwrapped;
  });
}
