/** GET /v1/admin/cache (operations/admin/cache-state.ts) */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { cacheState } from '../../../operations/admin/cache-state.js';
import { recordOutcome } from '../../audit-trail.js';
import { SECURITY, type V1Deps } from '../common.js';
import { ADMIN_READ_ERRORS, ADMIN_TAG, adminCallerOf } from './common.js';
import { CacheStateResponse } from './schemas.js';

export function registerAdminCache(scope: FastifyInstance, deps: V1Deps): void {
  scope.withTypeProvider<TypeBoxTypeProvider>().get(
    '/admin/cache',
    {
      config: { eventName: 'GetCacheState' },
      schema: {
        operationId: 'adminGetCache',
        tags: [ADMIN_TAG],
        summary: 'Data-key cache state (admin:read)',
        description:
          'The encrypt and decrypt caches of the replica that answers: per KMS key (entries, distinct contexts, oldest age, ' +
          'messages and bytes against the caps, hits) and per principal share. No key material, and contexts as counts only.',
        security: SECURITY,
        response: { 200: CacheStateResponse, ...ADMIN_READ_ERRORS },
      },
    },
    async (request) => recordOutcome(request, await cacheState(deps.admin, adminCallerOf(request, deps))),
  );
}
