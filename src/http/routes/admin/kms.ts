/** GET /v1/admin/kms (operations/admin/kms-state.ts) */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { kmsState } from '../../../operations/admin/kms-state.js';
import { recordOutcome } from '../../audit-trail.js';
import { SECURITY, type V1Deps } from '../common.js';
import { ADMIN_READ_ERRORS, ADMIN_TAG, adminCallerOf } from './common.js';
import { KmsStateResponse } from './schemas.js';

export function registerAdminKms(scope: FastifyInstance, deps: V1Deps): void {
  scope.withTypeProvider<TypeBoxTypeProvider>().get(
    '/admin/kms',
    {
      config: { eventName: 'GetKmsState' },
      schema: {
        operationId: 'adminGetKms',
        tags: [ADMIN_TAG],
        summary: 'KMS state (admin:read)',
        description:
          'KMS as the replica that answers sees it: the circuit breaker, error rate and latency of the recent calls per KMS ' +
          'operation, and the KMS budget left per principal.',
        security: SECURITY,
        response: { 200: KmsStateResponse, ...ADMIN_READ_ERRORS },
      },
    },
    async (request) => recordOutcome(request, await kmsState(deps.admin, adminCallerOf(request, deps))),
  );
}
