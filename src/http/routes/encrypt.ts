/** POST /v1/encrypt */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { recordOutcome } from '../audit-trail.js';
import { ENCRYPT_EXAMPLES, EncryptBody, EncryptResponse } from '../schemas.js';
import { COMMON_ERRORS, KEY_ERRORS, SECURITY, callerOf, type V1Deps } from './common.js';
import { encryptJson } from './json-items.js';

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
