/** GET /v1/admin/policy (operations/admin/policy-state.ts) */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { policyState } from '../../../operations/admin/policy-state.js';
import { recordOutcome } from '../../audit-trail.js';
import { SECURITY, type V1Deps } from '../common.js';
import { ADMIN_READ_ERRORS, ADMIN_TAG, adminCallerOf } from './common.js';
import { PolicyStateResponse } from './schemas.js';

export function registerAdminPolicy(scope: FastifyInstance, deps: V1Deps): void {
  scope.withTypeProvider<TypeBoxTypeProvider>().get(
    '/admin/policy',
    {
      config: { eventName: 'GetPolicyState' },
      schema: {
        operationId: 'adminGetPolicy',
        tags: [ADMIN_TAG],
        summary: 'Policy in force (admin:read)',
        description: 'The policy the replica that answers enforces (digest, load time, source) and the outcome of its last reload.',
        security: SECURITY,
        response: { 200: PolicyStateResponse, ...ADMIN_READ_ERRORS },
      },
    },
    async (request) => recordOutcome(request, await policyState(deps.admin, adminCallerOf(request, deps))),
  );
}
