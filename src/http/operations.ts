/**
 * One encrypt or decrypt item, from validated body to response: shared by the single-item
 * routes and the batch routes, so both authorize, encrypt and record exactly the same way.
 */
import type { Policy } from '../authz/policy.js';
import type { Principal } from '../authz/principal.js';
import { contextProblem, sameContext, toContext } from '../envelope/context.js';
import { EnvelopeError } from '../envelope/errors.js';
import type { KmsTrace } from '../envelope/kms-trace.js';
import type { DataKeyReport, DecryptResult, EnvelopeResult, EnvelopeService } from '../envelope/service.js';
import { toCiphertextString, type ParsedEnvelope } from '../envelope/format.js';
import type { EncryptionContext } from '../kms/provider.js';
import type { KeyGuard } from './key-guard.js';
import { ProblemError } from './problem.js';
import type { DecryptBody, EncryptBody } from './schemas.js';

export interface OperationDeps {
  guard: KeyGuard;
  envelope: EnvelopeService;
  defaultKeyId: string;
}

/** What one item tells the audit trail. */
export interface ItemNotes {
  keyId?: string;
  resolvedKeyId?: string;
  ruleId?: string;
  context?: EncryptionContext;
  plaintextBytes?: number;
  ciphertextBytes?: number;
  aadBytes?: number;
  dataKey?: DataKeyReport;
}

export interface Caller {
  policy: Policy;
  principal: Principal;
}

/** What an encrypt needs, decoded: the JSON and binary routes both come down to this. */
export interface EncryptInput {
  plaintext: Buffer;
  keyId: string | undefined;
  context: EncryptionContext;
  aad: Buffer | undefined;
}

/** Authorizes and encrypts to the binary envelope. The caller zeroes `input.plaintext`. */
export async function encryptToEnvelope(
  deps: OperationDeps,
  caller: Caller,
  input: EncryptInput,
  trace: KmsTrace,
  notes: ItemNotes,
): Promise<EnvelopeResult> {
  notes.keyId = input.keyId ?? deps.defaultKeyId;
  notes.context = input.context;
  notes.plaintextBytes = input.plaintext.length;
  notes.aadBytes = input.aad?.length;
  const { keyArn, ruleId } = await deps.guard.authorizeRequestedKey(
    caller.policy,
    caller.principal,
    'encrypt',
    notes.keyId,
    input.context,
    input.plaintext.length,
    trace,
  );
  notes.resolvedKeyId = keyArn;
  notes.ruleId = ruleId;
  const result = await deps.envelope.encryptToEnvelope(keyArn, input.plaintext, input.context, input.aad, trace);
  notes.dataKey = result.dataKey;
  return result;
}

export async function encryptItem(
  deps: OperationDeps,
  caller: Caller,
  item: EncryptBody,
  trace: KmsTrace,
  notes: ItemNotes,
): Promise<{ ciphertext: string; keyId: string }> {
  const context = validContext(item.context);
  const plaintext = Buffer.from(item.plaintext, 'base64');
  const aad = item.aad === undefined ? undefined : Buffer.from(item.aad, 'base64');
  try {
    const result = await encryptToEnvelope(deps, caller, { plaintext, keyId: item.keyId, context, aad }, trace, notes);
    const ciphertext = toCiphertextString(result.envelope);
    notes.ciphertextBytes = ciphertext.length;
    return { ciphertext, keyId: result.keyArn };
  } finally {
    plaintext.fill(0);
  }
}

/**
 * Authorizes on the key and context stored in the envelope (never on anything the caller
 * claims), checks the caller's expected context if given, and decrypts. The caller owns (and
 * zeroes) the returned plaintext.
 */
export async function decryptEnvelope(
  deps: OperationDeps,
  caller: Caller,
  envelope: ParsedEnvelope,
  expectedContext: EncryptionContext | undefined,
  aad: Buffer | undefined,
  trace: KmsTrace,
  notes: ItemNotes,
): Promise<DecryptResult> {
  notes.keyId = envelope.keyArn;
  notes.context = envelope.context;
  notes.plaintextBytes = envelope.body.length;
  notes.aadBytes = aad?.length;
  const { ruleId } = await deps.guard.authorizeStoredKey(caller.policy, caller.principal, 'decrypt', envelope.keyArn, envelope.context, envelope.body.length, trace);
  notes.ruleId = ruleId;
  if (expectedContext !== undefined && !sameContext(expectedContext, envelope.context)) {
    throw new EnvelopeError('ContextMismatch', 'the given context differs from the one stored in the ciphertext');
  }
  const result = await deps.envelope.decrypt(envelope, aad, trace);
  notes.dataKey = result.dataKey;
  return result;
}

export async function decryptItem(
  deps: OperationDeps,
  caller: Caller,
  item: DecryptBody,
  trace: KmsTrace,
  notes: ItemNotes,
): Promise<{ plaintext: string; keyId: string; context: EncryptionContext }> {
  notes.ciphertextBytes = item.ciphertext.length;
  const envelope = deps.envelope.parse(item.ciphertext);
  const aad = item.aad === undefined ? undefined : Buffer.from(item.aad, 'base64');
  const expected = item.context === undefined ? undefined : toContext(item.context);
  const result = await decryptEnvelope(deps, caller, envelope, expected, aad, trace, notes);
  try {
    return { plaintext: result.plaintext.toString('base64'), keyId: result.keyArn, context: { ...result.context } };
  } finally {
    result.plaintext.fill(0);
  }
}

/** Schema validation bounds each entry; this adds the totals KMS imposes. */
export function validContext(input: Readonly<Record<string, string>> | undefined): EncryptionContext {
  const context = toContext(input);
  const problem = contextProblem(context);
  if (problem) throw new ProblemError(400, 'InvalidContext', problem);
  return context;
}
