/** POST /v1/encrypt, and the JSON form of an encrypt item that the batch route shares. */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { encrypt } from '../../operations/encrypt.js';
import type { Caller, OperationDeps, Outcome } from '../../operations/operation.js';
import { recordOutcome } from '../audit-trail.js';
import { ENCRYPT_EXAMPLES, EncryptBody, EncryptResponse } from '../schemas/schemas.js';
import { COMMON_ERRORS, KEY_ERRORS, SECURITY, callerOf, type V1Deps } from './common.js';

export function registerEncrypt(scope: FastifyInstance, deps: V1Deps): void {
  scope.withTypeProvider<TypeBoxTypeProvider>().post(
    '/encrypt',
    {
      config: { eventName: 'Encrypt' },
      schema: {
        operationId: 'encrypt',
        tags: ['envelope'],
        summary: 'Encrypt a payload',
        description:
          'Encrypts `plaintext` locally with AES-256-GCM under a data key from KMS (cached within its age and usage caps). ' +
          'The result is one opaque string that carries the wrapped data key; decrypting it needs this service and KMS.',
        security: SECURITY,
        body: EncryptBody,
        bodyExamples: ENCRYPT_EXAMPLES,
        response: { 200: EncryptResponse, ...COMMON_ERRORS, ...KEY_ERRORS },
      },
    },
    async (request) => recordOutcome(request, await encryptJson(deps.operations, callerOf(request, deps), request.body)),
  );
}

/** Decodes the base64 fields, encrypts, and zeroes the decoded plaintext whatever happens. */
export async function encryptJson(deps: OperationDeps, caller: Caller, body: EncryptBody): Promise<Outcome<{ ciphertext: string; keyId: string }>> {
  const plaintext = Buffer.from(body.plaintext, 'base64');
  try {
    const aad = body.aad === undefined ? undefined : Buffer.from(body.aad, 'base64');
    return await encrypt(deps, caller, { plaintext, keyId: body.keyId, context: body.context, aad });
  } finally {
    plaintext.fill(0);
  }
}
