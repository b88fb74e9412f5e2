/** GET /v1/admin/fleet (operations/admin/fleet-state.ts) */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { fleetState } from '../../../operations/admin/fleet-state.js';
import { recordOutcome } from '../../audit-trail.js';
import { SECURITY, type V1Deps } from '../common.js';
import { ADMIN_READ_ERRORS, ADMIN_TAG, adminCallerOf } from './common.js';
import { FleetStateResponse } from './schemas.js';

export function registerAdminFleet(scope: FastifyInstance, deps: V1Deps): void {
  scope.withTypeProvider<TypeBoxTypeProvider>().get(
    '/admin/fleet',
    {
      config: { eventName: 'GetFleetState' },
      schema: {
        operationId: 'adminGetFleet',
        tags: [ADMIN_TAG],
        summary: 'Replicas of the fleet (admin:read)',
        description:
          'The replicas announced through Redis (REDIS_URL; each refreshes a heartbeat key with a TTL), as the replica that ' +
          'answers sees them: the ones an evict or a policy reload is sent to. Without REDIS_URL, the answering replica alone.',
        security: SECURITY,
        response: { 200: FleetStateResponse, ...ADMIN_READ_ERRORS },
      },
    },
    async (request) => recordOutcome(request, await fleetState(deps.admin, adminCallerOf(request, deps))),
  );
}
