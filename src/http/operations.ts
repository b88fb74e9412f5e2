/**
 * One encrypt or decrypt item, from validated body to response: shared by the single-item
 * routes and the batch routes, so both authorize, encrypt and record exactly the same way.
 */
import type { Policy } from '../authz/policy.js';
import type { Principal } from '../authz/principal.js';
import { contextProblem, sameContext, toContext } from '../envelope/context.js';
import { EnvelopeError } from '../envelope/errors.js';
import type { KmsTrace } from '../envelope/kms-trace.js';
import type { DataKeyReport, EnvelopeService } from '../envelope/service.js';
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
  notes.keyId = item.keyId ?? deps.defaultKeyId;
  notes.context = context;
  notes.plaintextBytes = plaintext.length;
  notes.aadBytes = aad?.length;
  try {
    const { keyArn, ruleId } = await deps.guard.authorizeRequestedKey(caller.policy, caller.principal, 'encrypt', notes.keyId, context, plaintext.length, trace);
    notes.resolvedKeyId = keyArn;
    notes.ruleId = ruleId;
    const result = await deps.envelope.encrypt(keyArn, plaintext, context, aad, trace);
    notes.dataKey = result.dataKey;
    notes.ciphertextBytes = result.ciphertext.length;
    return { ciphertext: result.ciphertext, keyId: result.keyArn };
  } finally {
    plaintext.fill(0);
  }
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
  notes.keyId = envelope.keyArn;
  notes.context = envelope.context;
  notes.plaintextBytes = envelope.body.length;
  const aad = item.aad === undefined ? undefined : Buffer.from(item.aad, 'base64');
  notes.aadBytes = aad?.length;
  // Judged on the context stored in the ciphertext, not on anything the caller claims.
  const { ruleId } = await deps.guard.authorizeStoredKey(caller.policy, caller.principal, 'decrypt', envelope.keyArn, envelope.context, envelope.body.length, trace);
  notes.ruleId = ruleId;
  if (item.context !== undefined && !sameContext(toContext(item.context), envelope.context)) {
    throw new EnvelopeError('ContextMismatch', 'the given context differs from the one stored in the ciphertext');
  }
  const result = await deps.envelope.decrypt(envelope, aad, trace);
  notes.dataKey = result.dataKey;
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
