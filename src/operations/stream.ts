/**
 * Streaming encrypt and decrypt: the same authorization, cache and audit facts as encrypt and
 * decrypt, for a payload whose bytes have not arrived yet. They return the stream's key and
 * header; the bytes themselves go through the Transforms of envelope/stream-crypto.ts.
 *
 * The policy judges the size declared in Content-Length; a stream without one is judged at
 * STREAM_MAX_BYTES, so a rule with maxPlaintextBytes is never passed by leaving the length out.
 * A decrypt is judged on its ciphertext's length (an upper bound of the plaintext's).
 */
import type { SealingStream, StreamKey } from '../envelope/service.js';
import type { StreamHeader } from '../envelope/stream-format.js';
import { withFacts, type Caller, type OperationDeps, type Outcome } from './operation.js';
import { assertExpectedContext, validContext } from './context.js';

export interface EncryptStreamInput {
  keyId: string | undefined;
  context: Readonly<Record<string, string>> | undefined;
  aad: Buffer | undefined;
  /** Content-Length, when the caller sent one. */
  declaredBytes: number | undefined;
  maxBytes: number;
}

export function startEncryptStream(deps: OperationDeps, caller: Caller, input: EncryptStreamInput): Promise<Outcome<SealingStream>> {
  return withFacts(caller, async (facts) => {
    const context = validContext(input.context);
    const keyId = input.keyId ?? deps.defaultKeyId;
    facts.requestParameters = { keyId, encryptionContext: context, aadBytes: input.aad?.length, plaintextBytes: input.declaredBytes };
    facts.stream = { phase: 'started' };
    const judgedBytes = input.declaredBytes ?? input.maxBytes;
    const { keyArn, ruleId } = await deps.guard.authorizeRequestedKey(caller.policy, caller.principal, 'encrypt', keyId, context, judgedBytes, caller.kms);
    facts.resolvedKeyId = keyArn;
    facts.ruleId = ruleId;
    // Unknown length: charged as more than any cap, so the stream gets a data key of its own.
    const result = await deps.envelope.startStream(keyArn, context, input.declaredBytes ?? Number.MAX_SAFE_INTEGER, caller.kms);
    facts.dataKey = result.dataKey;
    facts.responseElements = { keyId: result.keyArn };
    return result;
  });
}

export interface DecryptStreamInput {
  header: StreamHeader;
  expectedContext: Readonly<Record<string, string>> | undefined;
  aad: Buffer | undefined;
  declaredBytes: number | undefined;
  maxBytes: number;
}

export function startDecryptStream(deps: OperationDeps, caller: Caller, input: DecryptStreamInput): Promise<Outcome<StreamKey>> {
  return withFacts(caller, async (facts) => {
    const { header } = input;
    facts.requestParameters = { keyId: header.keyArn, encryptionContext: header.context, aadBytes: input.aad?.length, ciphertextBytes: input.declaredBytes };
    facts.stream = { phase: 'started' };
    const judgedBytes = input.declaredBytes ?? input.maxBytes;
    const { ruleId } = await deps.guard.authorizeStoredKey(caller.policy, caller.principal, 'decrypt', header.keyArn, header.context, judgedBytes, caller.kms);
    facts.ruleId = ruleId;
    assertExpectedContext(input.expectedContext, header.context);
    const result = await deps.envelope.openStream(header, caller.kms);
    facts.dataKey = result.dataKey;
    facts.responseElements = { keyId: header.keyArn };
    return result;
  });
}
