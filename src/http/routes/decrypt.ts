/** POST /v1/decrypt */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { recordOutcome } from '../audit-trail.js';
import { DECRYPT_EXAMPLES, DecryptBody, DecryptResponse } from '../schemas.js';
import { COMMON_ERRORS, KEY_ERRORS, OPEN_ERRORS, SECURITY, callerOf, type V1Deps } from './common.js';
import { decryptJson } from './json-items.js';

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
