/** POST /v1/rewrap (operations/rewrap.ts) */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { rewrap } from '../../operations/rewrap.js';
import { recordOutcome } from '../audit-trail.js';
import { EncryptResponse, REWRAP_EXAMPLES, RewrapBody } from '../schemas/schemas.js';
import { COMMON_ERRORS, KEY_ERRORS, OPEN_ERRORS, SECURITY, callerOf, type V1Deps } from './common.js';

export function registerRewrap(scope: FastifyInstance, deps: V1Deps): void {
  scope.withTypeProvider<TypeBoxTypeProvider>().post(
    '/rewrap',
    {
      config: { eventName: 'ReEncrypt' },
      schema: {
        operationId: 'rewrap',
        tags: ['envelope'],
        summary: 'Re-wrap a ciphertext under another key, without decrypting it',
        description:
          'Only the wrapped data key changes (KMS ReEncrypt); the encrypted payload is carried over byte for byte. ' +
          '`keyId` is the destination (default key if omitted). The context never changes; if given it must equal the stored one.',
        security: SECURITY,
        body: RewrapBody,
        bodyExamples: REWRAP_EXAMPLES,
        response: { 200: EncryptResponse, ...COMMON_ERRORS, ...KEY_ERRORS, ...OPEN_ERRORS },
      },
    },
    async (request) => {
      const { ciphertext, keyId, context } = request.body;
      const result = recordOutcome(request, await rewrap(deps.operations, callerOf(request, deps), { ciphertext, keyId, expectedContext: context }));
      return { ciphertext: result.ciphertext, keyId: result.keyArn };
    },
  );
}
