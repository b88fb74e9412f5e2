/**
 * The JSON forms of encrypt and decrypt (base64 in, base64 out), shared by the single-item
 * routes and the batch routes so both decode, call and encode exactly the same way.
 */
import type { Caller, OperationDeps } from '../../operations/caller.js';
import type { Outcome } from '../../operations/audit-facts.js';
import { decrypt } from '../../operations/decrypt.js';
import { encrypt } from '../../operations/encrypt.js';
import type { EncryptionContext } from '../../kms/provider.js';
import type { DecryptBody, EncryptBody } from '../schemas.js';

export async function encryptJson(deps: OperationDeps, caller: Caller, body: EncryptBody): Promise<Outcome<{ ciphertext: string; keyId: string }>> {
  const plaintext = Buffer.from(body.plaintext, 'base64');
  try {
    return await encrypt(deps, caller, { plaintext, keyId: body.keyId, context: body.context, aad: base64(body.aad) });
  } finally {
    plaintext.fill(0);
  }
}

export async function decryptJson(
  deps: OperationDeps,
  caller: Caller,
  body: DecryptBody,
): Promise<Outcome<{ plaintext: string; keyId: string; context: EncryptionContext }>> {
  const outcome = await decrypt(deps, caller, { ciphertext: body.ciphertext, expectedContext: body.context, aad: base64(body.aad) });
  if (!outcome.ok) return outcome;
  const { plaintext, keyArn, context } = outcome.value;
  try {
    return { ...outcome, value: { plaintext: plaintext.toString('base64'), keyId: keyArn, context: { ...context } } };
  } finally {
    plaintext.fill(0);
  }
}

function base64(value: string | undefined): Buffer | undefined {
  return value === undefined ? undefined : Buffer.from(value, 'base64');
}
