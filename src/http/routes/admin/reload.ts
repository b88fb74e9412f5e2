/** POST /v1/admin/policy/reload (operations/admin/reload-policy.ts) */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { reloadPolicy } from '../../../operations/admin/reload-policy.js';
import { recordOutcome } from '../../audit-trail.js';
import { COMMON_ERRORS, SECURITY, type V1Deps } from '../common.js';
import { ADMIN_TAG, POLICY_INVALID, adminCallerOf } from './common.js';
import { ReloadResponse } from './schemas.js';

export function registerAdminReload(scope: FastifyInstance, deps: V1Deps): void {
  scope.withTypeProvider<TypeBoxTypeProvider>().post(
    '/admin/policy/reload',
    {
      config: { eventName: 'ReloadPolicy' },
      schema: {
        operationId: 'adminReloadPolicy',
        tags: [ADMIN_TAG],
        summary: 'Reload the policy file (admin:policy)',
        description:
          'Re-reads POLICY_FILE on the replica that answers, with the same validation as SIGHUP. A valid file is swapped in; ' +
          'an invalid one keeps the policy in force and answers 422 with every error and its line and column. No body.',
        security: SECURITY,
        response: {
          200: ReloadResponse,
          422: POLICY_INVALID,
          ...COMMON_ERRORS,
        },
      },
    },
    async (request) => recordOutcome(request, await reloadPolicy(deps.admin, adminCallerOf(request, deps))),
  );
}
