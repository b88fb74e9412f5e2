/** GET /v1/keys (operations/keys.ts) */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { listKeys } from '../../operations/keys.js';
import { recordOutcome } from '../audit-trail.js';
import { KeysResponse } from '../schemas/schemas.js';
import { COMMON_ERRORS, SECURITY, callerOf, type V1Deps } from './common.js';

export function registerKeys(scope: FastifyInstance, deps: V1Deps): void {
  scope.withTypeProvider<TypeBoxTypeProvider>().get(
    '/keys',
    {
      config: { eventName: 'ListKeys' },
      schema: {
        operationId: 'listKeys',
        tags: ['keys'],
        summary: 'List the keys the caller may use',
        description:
          'The keys this caller may use, found through their aliases (KMS ListAliases), each with the operations ' +
          'the policy grants this principal on it, and under `grants` the rules that grant them with the encryption context ' +
          'each requires (claim bindings resolved to this caller\'s claims). A key without an alias is usable by ARN but not listed here.',
        security: SECURITY,
        response: { 200: KeysResponse, 401: COMMON_ERRORS[401], 429: COMMON_ERRORS[429], 503: COMMON_ERRORS[503] },
      },
    },
    async (request) => ({ keys: recordOutcome(request, await listKeys(deps.operations, callerOf(request, deps))) }),
  );
}
