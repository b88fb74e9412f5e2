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
import { isKmsError } from '../kms/errors.js';
import type { EncryptionContext, KeyDescription } from '../kms/provider.js';
import { AccessDeniedError, ProblemError } from './errors.js';
import { ATTR, contextShape, inSpan } from '../telemetry/spans.js';

export interface KeyAuthorization {
  keyArn: string;
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
}

/** The authorization's span: the operation, the context's keys (never its values), the verdict. */
function traced(operation: Operation, context: EncryptionContext, decide: () => Promise<KeyAuthorization>): Promise<KeyAuthorization> {
  return inSpan('authorize', { [ATTR.operation]: operation, ...contextShape(context) }, async (span) => {
    try {
      const granted = await decide();
      span.setAttributes({ [ATTR.decision]: 'allow', [ATTR.ruleId]: granted.ruleId });
      return granted;
    } catch (error) {
      if (error instanceof AccessDeniedError) span.setAttribute(ATTR.decision, 'deny');
      throw error;
    }
  });
}
