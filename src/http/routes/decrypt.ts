/** POST /v1/decrypt, and the JSON form of a decrypt item that the batch route shares. */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { decrypt } from '../../operations/decrypt.js';
import type { Caller, OperationDeps, Outcome } from '../../operations/operation.js';
import type { EncryptionContext } from '../../operations/context.js';
import { recordOutcome } from '../audit-trail.js';
import { DECRYPT_EXAMPLES, DecryptBody, DecryptResponse } from '../schemas/schemas.js';
import { COMMON_ERRORS, KEY_ERRORS, OPEN_ERRORS, SECURITY, callerOf, type V1Deps } from './common.js';

export function registerDecrypt(scope: FastifyInstance, deps: V1Deps): void {
  scope.withTypeProvider<TypeBoxTypeProvider>().post(
    '/decrypt',
    {
      config: { eventName: 'Decrypt' },
      schema: {
        operationId: 'decrypt',
        tags: ['envelope'],
        summary: 'Decrypt a ciphertext',
        description:
          'Opens a ciphertext from /v1/encrypt. The policy judges the request on the key and the context stored in the ' +
          'ciphertext. If `context` is given it must equal the stored one; `aad` must be the one used to encrypt.',
        security: SECURITY,
        body: DecryptBody,
        bodyExamples: DECRYPT_EXAMPLES,
        response: { 200: DecryptResponse, ...COMMON_ERRORS, ...KEY_ERRORS, ...OPEN_ERRORS },
      },
    },
    async (request) => recordOutcome(request, await decryptJson(deps.operations, callerOf(request, deps), request.body)),
  );
}

/** Decrypts and encodes the plaintext as base64, zeroing the decrypted buffer. */
export async function decryptJson(
  deps: OperationDeps,
  caller: Caller,
  body: DecryptBody,
): Promise<Outcome<{ plaintext: string; keyId: string; context: EncryptionContext }>> {
  const aad = body.aad === undefined ? undefined : Buffer.from(body.aad, 'base64');
  const outcome = await decrypt(deps, caller, { ciphertext: body.ciphertext, expectedContext: body.context, aad });
  if (!outcome.ok) return outcome;
  const { plaintext, keyArn, context } = outcome.value;
  try {
    return { ...outcome, value: { plaintext: plaintext.toString('base64'), keyId: keyArn, context: { ...context } } };
  } finally {
    plaintext.fill(0);
  }
}
