/** POST /v1/admin/cache/evict (operations/admin/evict.ts) */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { evictDataKeys } from '../../../operations/admin/evict.js';
import { recordOutcome } from '../../audit-trail.js';
import { COMMON_ERRORS, SECURITY, type V1Deps } from '../common.js';
import { ADMIN_TAG, adminCallerOf } from './common.js';
import { EvictBody, EvictResponse } from './schemas.js';

export function registerAdminEvict(scope: FastifyInstance, deps: V1Deps): void {
  scope.withTypeProvider<TypeBoxTypeProvider>().post(
    '/admin/cache/evict',
    {
      config: { eventName: 'EvictDataKeys' },
      schema: {
        operationId: 'adminEvictCache',
        tags: [ADMIN_TAG],
        summary: 'Drop cached data keys (admin:cache)',
        description:
          'Drops and zeroes the cached data keys of a KMS key (`keyId`: alias, id or ARN; when KMS cannot resolve an alias, ' +
          'give the ARN), of an encryption context, of both, or all of them (`all: true`), on the replica that answers. ' +
          'The next request for them calls KMS. The first move when a data key or a KMS key is suspected: call it on every replica.',
        security: SECURITY,
        body: EvictBody,
        bodyExamples: {
          key: { summary: 'One KMS key', value: { keyId: 'alias/default' } },
          context: { summary: 'One context', value: { context: { tenant: 'acme' } } },
          all: { summary: 'Everything', value: { all: true } },
        },
        response: { 200: EvictResponse, ...COMMON_ERRORS },
      },
    },
    async (request) => recordOutcome(request, await evictDataKeys(deps.admin, adminCallerOf(request, deps), request.body)),
  );
}
