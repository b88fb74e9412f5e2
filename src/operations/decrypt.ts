/**
 * Decrypt: authorize on the key and context stored in the envelope (never on anything the
 * caller claims), check the caller's expected context if given, and open the payload. Shared
 * by /v1/decrypt, its binary form and batch items.
 */
import type { ParsedEnvelope } from '../format/format.js';
import type { DecryptResult, EnvelopeService } from '../keys/envelope-service.js';
import { withFacts, type Outcome, type Caller, type OperationDeps } from './operation.js';
import { assertExpectedContext, validContext } from './context.js';
import { KEY_SET_PREFIX } from '../keys/key-sets.js';
import type { KeySetAuditDetails } from './audit-facts.js';
import { unwrapThroughAny } from './key-set-unwrap.js';

export interface DecryptInput {
  /** The text form (`ev1:...`) or the binary envelope. */
  ciphertext: string | Buffer;
  expectedContext: Readonly<Record<string, string>> | undefined;
  aad: Buffer | undefined;
}

/** The caller owns (and zeroes) the returned plaintext. */
export function decrypt(deps: OperationDeps, caller: Caller, input: DecryptInput): Promise<Outcome<DecryptResult>> {
  return withFacts(caller, async (facts) => {
    const ciphertextBytes = input.ciphertext.length;
    facts.requestParameters = { ciphertextBytes };
    // A context over the limits is a bad request whatever the ciphertext holds, as on encrypt.
    if (input.expectedContext !== undefined) validContext(input.expectedContext);
    const envelope = parse(deps.envelope, input.ciphertext);
    const plaintextBytes = envelope.body.length;
    if (envelope.keySet !== undefined) {
      const keyName = KEY_SET_PREFIX + envelope.keySet;
      facts.requestParameters = { keyId: keyName, encryptionContext: envelope.context, aadBytes: input.aad?.length, ciphertextBytes };
      const usable = await deps.guard.authorizeWrappedKeys(caller.policy, caller.principal, 'decrypt', envelope, deps.keySets.current, plaintextBytes, caller.kms);
      facts.ruleId = usable[0]!.ruleId;
      assertExpectedContext(input.expectedContext, envelope.context);
      const details: KeySetAuditDetails = { name: envelope.keySet, keys: envelope.wrappedKeys.map((entry) => entry.keyArn) };
      facts.keySet = details;
      const opened = await unwrapThroughAny(deps, caller.kms, usable, envelope.context, details, (entry) =>
        deps.envelope.decrypt(envelope, input.aad, caller.kms, entry),
      );
      facts.ruleId = opened.ruleId;
      facts.dataKey = opened.value.dataKey;
      facts.responseElements = { keyId: keyName, plaintextBytes };
      return { ...opened.value, keyArn: keyName };
    }
    facts.requestParameters = { keyId: envelope.keyArn, encryptionContext: envelope.context, aadBytes: input.aad?.length, ciphertextBytes };
    const { ruleId } = await deps.guard.authorizeStoredKey(caller.policy, caller.principal, 'decrypt', envelope.keyArn, envelope.context, plaintextBytes, caller.kms);
    facts.ruleId = ruleId;
    assertExpectedContext(input.expectedContext, envelope.context);
    const result = await deps.envelope.decrypt(envelope, input.aad, caller.kms);
    facts.dataKey = result.dataKey;
    facts.responseElements = { keyId: envelope.keyArn, plaintextBytes };
    return result;
  });
}

/**
 * The binary envelope, or the same envelope in its text form (`ev1:` + base64url), so a
 * ciphertext from the JSON API can be sent to the binary route as is. Never ambiguous: a
 * binary envelope starts with its version byte, never with `e`.
 */
function parse(service: EnvelopeService, ciphertext: string | Buffer): ParsedEnvelope {
  if (typeof ciphertext === 'string') return service.parse(ciphertext);
  if (!TEXT_FORM.test(ciphertext.subarray(0, 8).toString('latin1'))) return service.parseBinary(ciphertext);
  return service.parse(ciphertext.toString('latin1').trimEnd());
}
const TEXT_FORM = /^ev\d+:/;
