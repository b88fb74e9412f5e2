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
import type { AuditFacts } from './operation.js';
import type { KeyBlock, KeyBlockFields, ParsedEnvelope } from '../format/format.js';
import { encodeRewrapped, toCiphertextString } from '../format/format.js';
import { dataKeyIdOf } from '../keys/data-key-cache.js';
import { KEY_SET_PREFIX, keySetNameOf } from '../keys/key-sets.js';
import type { KeySetAuditDetails } from './audit-facts.js';
import type { AuthorizedWrappedKey } from './key-guard.js';
import { unwrapThroughAny } from './key-set-unwrap.js';

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
    if (envelope.keySet !== undefined || keySetNameOf(destination) !== undefined) {
      return rewrapWithKeySet(deps, caller, envelope, destination, input, facts);
    }
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

/**
 * A rewrap where a key set is the source or the destination: the new key block holds exactly
 * the destination's keys (the set's keys as configured now, or the one key named). A key the
 * ciphertext already has a wrapped key for keeps it as is (no KMS call); for the others, the
 * data key is unwrapped once through any source key the caller may use (failover as decrypt),
 * checked against the key commitment, and wrapped with KMS Encrypt under each (ReEncrypt cannot
 * cross regions). So adding a region costs one Decrypt and one Encrypt per new key, dropping one
 * costs no KMS call, and the payload is never decrypted. Authorized as any rewrap: `rewrap` on a
 * source key (or the ciphertext's set), on the destination, and the destination accepted by a
 * rule granting the source.
 */
async function rewrapWithKeySet(deps: OperationDeps, caller: Caller, envelope: ParsedEnvelope, destination: string, input: RewrapInput, facts: AuditFacts) {
  const { guard, directory } = deps;
  const keySets = deps.keySets.current;
  if (envelope.keySet !== undefined) facts.requestParameters = { ...facts.requestParameters, keyId: KEY_SET_PREFIX + envelope.keySet };
  const usable: AuthorizedWrappedKey[] =
    envelope.keySet !== undefined
      ? await guard.authorizeWrappedKeys(caller.policy, caller.principal, 'rewrap', envelope, keySets, undefined, caller.kms)
      : [{ entry: envelope, ruleId: (await guard.authorizeStoredKey(caller.policy, caller.principal, 'rewrap', envelope.keyArn, envelope.context, undefined, caller.kms)).ruleId }];
  assertExpectedContext(input.expectedContext, envelope.context);

  const destinationSet = keySetNameOf(destination);
  let destinationKeys: readonly string[];
  let destinationNames: string[];
  let destinationRule: string;
  if (destinationSet !== undefined) {
    const set = guard.authorizeKeySet(caller.policy, caller.principal, 'rewrap', destinationSet, keySets.sets.get(destinationSet), envelope.context, undefined);
    destinationKeys = set.keys;
    destinationNames = [destination];
    destinationRule = set.ruleId;
  } else {
    const target = await guard.authorizeRequestedKey(caller.policy, caller.principal, 'rewrap', destination, envelope.context, undefined, caller.kms);
    destinationKeys = [target.keyArn];
    destinationNames = [destination, ...(await directory.namesOf(target.keyArn, caller.kms))];
    destinationRule = target.ruleId;
  }
  // The destination relative to the source: judged with every name of the source keys the caller may use.
  const sourceNames = new Set<string>();
  const sourceSet = envelope.keySet === undefined ? undefined : keySets.sets.get(envelope.keySet);
  for (const { entry } of usable) {
    for (const name of await directory.namesOf(entry.keyArn, caller.kms)) sourceNames.add(name);
    if (sourceSet?.keys.includes(entry.keyArn)) sourceNames.add(KEY_SET_PREFIX + sourceSet.name);
  }
  const onward = caller.policy.decideRewrapDestination(caller.principal, {
    sourceKeyNames: [...sourceNames],
    destinationKeyNames: destinationNames,
    context: envelope.context,
    plaintextBytes: envelope.body.length,
  });
  if (!onward.allowed) throw new AccessDeniedError(onward.reason);

  const present = new Map(envelope.wrappedKeys.map((entry) => [entry.keyArn, entry] as const));
  const missing = destinationKeys.filter((keyArn) => !present.has(keyArn));
  const details: KeySetAuditDetails = { name: destinationSet ?? envelope.keySet!, keys: [...destinationKeys] };
  const made = new Map<string, KeyBlockFields>();
  let dataKey = { dataKeyId: dataKeyIdOf(envelope.wrappedKey), cacheHit: true, coalesced: false };
  let ruleIds = [...new Set(usable.map((candidate) => candidate.ruleId))];
  if (missing.length > 0) {
    const opened = await unwrapThroughAny(deps, caller.kms, usable, envelope.context, details, (entry) => deps.envelope.unwrapForRewrap(envelope, entry, caller.kms));
    ruleIds = [opened.ruleId];
    dataKey = opened.value.report;
    try {
      for (const entry of await deps.envelope.wrapUnder(opened.value.dataKey, missing, envelope.context, caller.kms)) made.set(entry.keyArn, entry);
    } finally {
      opened.value.dataKey.fill(0);
    }
  }
  const wrappedKeys = destinationKeys.map((keyArn) => present.get(keyArn) ?? made.get(keyArn)!);
  const block: KeyBlock = destinationSet !== undefined ? { keySet: destinationSet, wrappedKeys } : { wrappedKeys };
  const ciphertext = toCiphertextString(encodeRewrapped(block, envelope.sealedPart));
  facts.keySet = details;
  facts.ruleId = [...new Set([...ruleIds, destinationRule, onward.ruleId])].join(',');
  facts.dataKey = dataKey;
  const keyArn = destinationSet !== undefined ? destination : destinationKeys[0]!;
  facts.responseElements = { keyId: keyArn, ciphertextBytes: ciphertext.length };
  return { ciphertext, keyArn, dataKey };
}
