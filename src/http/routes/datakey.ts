/** POST /v1/datakey (operations/datakey.ts) */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { issueDataKey } from '../../operations/datakey.js';
import { recordOutcome } from '../audit-trail.js';
import { DATAKEY_EXAMPLES, DataKeyBody, DataKeyResponse } from '../schemas/schemas.js';
import { COMMON_ERRORS, KEY_ERRORS, SECURITY, callerOf, type V1Deps } from './common.js';

export function registerDataKey(scope: FastifyInstance, deps: V1Deps): void {
  scope.withTypeProvider<TypeBoxTypeProvider>().post(
    '/datakey',
    {
      config: { eventName: 'GenerateDataKey' },
      schema: {
        operationId: 'generateDataKey',
        tags: ['envelope'],
        summary: 'Generate a data key for client-side encryption',
        description:
          'Always a fresh key from KMS (never the cache). `wrappedKey` decrypts with KMS Decrypt and the same context. ' +
          '`includePlaintext: true` needs the `datakey:plaintext` grant; zero the key as soon as you are done with it.',
        security: SECURITY,
        body: DataKeyBody,
        bodyExamples: DATAKEY_EXAMPLES,
        response: { 200: DataKeyResponse, ...COMMON_ERRORS, ...KEY_ERRORS },
      },
    },
    async (request) => {
      const { keyId, context, includePlaintext } = request.body;
      const issued = recordOutcome(
        request,
        await issueDataKey(deps.operations, callerOf(request, deps), { keyId, context, includePlaintext: includePlaintext === true }),
      );
      const response = {
        keyId: issued.keyArn,
        wrappedKey: issued.wrappedKey.toString('base64'),
        ...(issued.plaintextKey ? { plaintextKey: issued.plaintextKey.toString('base64') } : {}),
      };
      issued.plaintextKey?.fill(0);
      return response;
    },
  );
}
