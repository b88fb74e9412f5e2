/**
 * Joins key resolution and the policy: "may this principal do this with this key?".
 *
 * Once a data key is cached, KMS never sees the request, so this check is the only one that
 * runs for most requests. It answers 403 before it reveals anything: a caller whose request
 * the policy denies learns neither whether the key exists, nor its state, nor which
 * constraint failed. A caller no rule could allow costs no KMS look-up at all.
 */
import type { Policy } from '../authz/policy.js';
import type { Operation, Principal } from '../authz/principal.js';
import { assertUsable, type KeyDirectory } from '../keys/key-directory.js';
import type { KmsTrace } from '../keys/kms-trace.js';
import { isKmsError, KmsError } from '../kms/errors.js';
import type { EncryptionContext, KeyDescription } from '../kms/provider.js';
import { AccessDeniedError, ProblemError } from './errors.js';
import { ATTR, contextShape, inSpan } from '../telemetry/spans.js';
import type { KeyBlockFields } from '../format/format.js';
import { KEY_SET_PREFIX, type KeySet, type KeySetsSnapshot } from '../keys/key-sets.js';

export interface KeyAuthorization {
  keyArn: string;
  ruleId: string;
}

/** A stored key block as the guard judges it: the set it names, its wrapped keys, the context. */
export interface StoredKeyBlock {
  keySet?: string;
  wrappedKeys: readonly KeyBlockFields[];
  context: EncryptionContext;
}

export interface AuthorizedWrappedKey {
  entry: KeyBlockFields;
  ruleId: string;
}

export class KeyGuard {
  constructor(private readonly directory: KeyDirectory) {}

  /** For encrypt, datakey and a rewrap's destination: the caller names the key. */
  authorizeRequestedKey(
    policy: Policy,
    principal: Principal,
    operation: Operation,
    requestedKeyId: string,
    context: EncryptionContext,
    plaintextBytes: number | undefined,
    trace: KmsTrace,
  ): Promise<KeyAuthorization> {
    return traced(operation, context, () => this.requestedKey(policy, principal, operation, requestedKeyId, context, plaintextBytes, trace));
  }

  /** For decrypt and a rewrap's source: the key and context come from the ciphertext. */
  authorizeStoredKey(
    policy: Policy,
    principal: Principal,
    operation: Operation,
    keyArn: string,
    context: EncryptionContext,
    plaintextBytes: number | undefined,
    trace: KmsTrace,
  ): Promise<KeyAuthorization> {
    return traced(operation, context, () => this.storedKey(policy, principal, operation, keyArn, context, plaintextBytes, trace));
  }

  private async requestedKey(
    policy: Policy,
    principal: Principal,
    operation: Operation,
    requestedKeyId: string,
    context: EncryptionContext,
    plaintextBytes: number | undefined,
    trace: KmsTrace,
  ): Promise<KeyAuthorization> {
    // First on the name as given, so a denied caller cannot probe which keys exist.
    const byName = policy.decide(principal, { operation, keyNames: [requestedKeyId], context, plaintextBytes });
    // No rule could allow this request whatever the key: deny before any KMS look-up.
    if (!byName.allowed && !policy.couldAllow(principal, { operation, context, plaintextBytes })) throw new AccessDeniedError(byName.reason);
    let key: KeyDescription;
    try {
      key = await this.directory.describe(requestedKeyId, trace);
    } catch (error) {
      if (!byName.allowed && isKmsError(error) && (error.code === 'KeyNotFound' || error.code === 'InvalidRequest')) {
        throw new AccessDeniedError(byName.reason);
      }
      throw error;
    }
    let decision = byName;
    if (!decision.allowed) {
      // The rule may name the key by its ARN or another alias.
      const keyNames = [requestedKeyId, ...(await this.directory.namesOf(key.keyArn, trace))];
      decision = policy.decide(principal, { operation, keyNames, context, plaintextBytes });
      if (!decision.allowed) throw new AccessDeniedError(decision.reason);
    }
    // Only now, for a caller the policy allows, may the key's state show (409).
    return { keyArn: assertUsable(key), ruleId: decision.ruleId };
  }

  private async storedKey(
    policy: Policy,
    principal: Principal,
    operation: Operation,
    keyArn: string,
    context: EncryptionContext,
    plaintextBytes: number | undefined,
    trace: KmsTrace,
  ): Promise<KeyAuthorization> {
    let decision = policy.decide(principal, { operation, keyNames: [keyArn], context, plaintextBytes });
    if (!decision.allowed) {
      // No rule could allow this request whatever the key: deny before any KMS look-up.
      if (!policy.couldAllow(principal, { operation, context, plaintextBytes })) throw new AccessDeniedError(decision.reason);
      // The rule may name the key by an alias.
      const keyNames = await this.directory.namesOf(keyArn, trace);
      decision = policy.decide(principal, { operation, keyNames, context, plaintextBytes });
      if (!decision.allowed) throw new AccessDeniedError(decision.reason);
    }
    try {
      // A disabled or deleted key stops decrypting within the directory's TTL, cache or not.
      await this.directory.resolve(keyArn, trace);
    } catch (error) {
      if (isKmsError(error) && (error.code === 'KeyNotFound' || error.code === 'InvalidRequest')) {
        // The ARN came from the ciphertext: an unknown one means a forged or foreign envelope.
        throw new ProblemError(422, 'DataKeyUnwrapFailed', 'the key named in the ciphertext is unknown to KMS');
      }
      throw error;
    }
    return { keyArn, ruleId: decision.ruleId };
  }

  /**
   * Encrypt (or a rewrap's destination) under `keyset/NAME`: the policy judges that name, as
   * for a key; only a caller it allows learns whether the set exists (404 KeyNotFound).
   */
  authorizeKeySet(
    policy: Policy,
    principal: Principal,
    operation: Operation,
    keySetName: string,
    set: KeySet | undefined,
    context: EncryptionContext,
    plaintextBytes: number | undefined,
  ): KeySet & { ruleId: string } {
    const decision = policy.decide(principal, { operation, keyNames: [KEY_SET_PREFIX + keySetName], context, plaintextBytes });
    if (!decision.allowed) throw new AccessDeniedError(decision.reason);
    if (!set) throw new KmsError('KeyNotFound', `no key set named ${keySetName}`);
    return { ...set, ruleId: decision.ruleId };
  }

  /**
   * Decrypt (or a rewrap's source) of a key-set block: the wrapped keys this caller may use. A
   * wrapped key is usable when the policy allows its key (by ARN, or an alias of it), or allows
   * `keyset/NAME` for the set the block names AND that configured set holds the key: a block
   * that names another set than the one it was written for grants nothing beyond that set's
   * own keys. 403 when none is usable.
   */
  async authorizeWrappedKeys(
    policy: Policy,
    principal: Principal,
    operation: Operation,
    stored: StoredKeyBlock,
    keySets: KeySetsSnapshot,
    plaintextBytes: number | undefined,
    trace: KmsTrace,
  ): Promise<AuthorizedWrappedKey[]> {
    const set = stored.keySet === undefined ? undefined : keySets.sets.get(stored.keySet);
    const { context } = stored;
    const judge = (entry: KeyBlockFields, names: string[]) => {
      if (set?.keys.includes(entry.keyArn)) names.push(KEY_SET_PREFIX + set.name);
      return policy.decide(principal, { operation, keyNames: names, context, plaintextBytes });
    };
    let reason = 'no rule allows any key of the ciphertext';
    const allowed: AuthorizedWrappedKey[] = [];
    for (const entry of stored.wrappedKeys) {
      const decision = judge(entry, [entry.keyArn]);
      if (decision.allowed) allowed.push({ entry, ruleId: decision.ruleId });
      else reason = decision.reason;
    }
    if (allowed.length > 0) return allowed;
    if (!policy.couldAllow(principal, { operation, context, plaintextBytes })) throw new AccessDeniedError(reason);
    // The rules may name the keys by an alias.
    for (const entry of stored.wrappedKeys) {
      const decision = judge(entry, await this.directory.namesOf(entry.keyArn, trace));
      if (decision.allowed) allowed.push({ entry, ruleId: decision.ruleId });
      else reason = decision.reason;
    }
    if (allowed.length === 0) throw new AccessDeniedError(reason);
    return allowed;
  }
}

/** The authorization's span: the operation, the context's keys (never its values), the verdict. */
function traced(operation: Operation, context: EncryptionContext, decide: () => Promise<KeyAuthorization>): Promise<KeyAuthorization> {
  return inSpan('authorize', () => ({ [ATTR.operation]: operation, ...contextShape(context) }), async (span) => {
    try {
      const granted = await decide();
      if (span.isRecording()) span.setAttributes({ [ATTR.decision]: 'allow', [ATTR.ruleId]: granted.ruleId });
      return granted;
    } catch (error) {
      if (error instanceof AccessDeniedError) span.setAttribute(ATTR.decision, 'deny');
      throw error;
    }
  });
}
