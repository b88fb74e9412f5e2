/** POST /v1/unwrap (operations/unwrap.ts): the data key of a client-side ciphertext, for a client that opens it locally. */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { unwrapDataKey } from '../../operations/unwrap.js';
import { recordOutcome } from '../audit-trail.js';
import { UNWRAP_EXAMPLES, UnwrapBody, UnwrapResponse } from '../schemas/schemas.js';
import { COMMON_ERRORS, KEY_ERRORS, SECURITY, callerOf, problem, type V1Deps } from './common.js';

export function registerUnwrap(scope: FastifyInstance, deps: V1Deps): void {
  scope.withTypeProvider<TypeBoxTypeProvider>().post(
    '/unwrap',
    {
      config: { eventName: 'UnwrapDataKey' },
      schema: {
        operationId: 'unwrapDataKey',
        tags: ['envelope'],
        summary: 'Unwrap a stored data key for client-side decryption',
        description:
          'KMS Decrypt of a data key from /v1/datakey (as a client-side stream header stores it), never served from the cache. ' +
          'Authorized like a decrypt, on the key and context given (the stored ones), under the `datakey:unwrap` grant. ' +
          'The caller checks the key commitment stored beside the key, and zeroes the key when done.',
        security: SECURITY,
        body: UnwrapBody,
        bodyExamples: UNWRAP_EXAMPLES,
        response: {
          200: UnwrapResponse,
          ...COMMON_ERRORS,
          ...KEY_ERRORS,
          422: problem(422, 'KMS cannot unwrap this key under this context, or the key named is unknown to KMS.', 'DataKeyUnwrapFailed', 'KMS could not unwrap the data key'),
        },
      },
    },
    async (request) => {
      const { keyId, wrappedKey, context } = request.body;
      const unwrapped = recordOutcome(
        request,
        await unwrapDataKey(deps.operations, callerOf(request, deps), { keyId, wrappedKey: Buffer.from(wrappedKey, 'base64'), context }),
      );
      const response = { keyId: unwrapped.keyArn, plaintextKey: unwrapped.plaintextKey.toString('base64') };
      unwrapped.plaintextKey.fill(0);
      return response;
    },
  );
}
