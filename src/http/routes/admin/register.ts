/** The admin API (/v1/admin/...): one file per endpoint, behind the same hooks as every /v1 route. */
import type { FastifyInstance } from 'fastify';
import type { V1Deps } from '../common.js';
import { registerAdminCache } from './cache.js';
import { registerAdminEvict } from './evict.js';
import { registerAdminFleet } from './fleet.js';
import { registerAdminKms } from './kms.js';
import { registerAdminPolicy } from './policy.js';
import { registerAdminReload } from './reload.js';

export function registerAdminRoutes(scope: FastifyInstance, deps: V1Deps): void {
  registerAdminCache(scope, deps);
  registerAdminEvict(scope, deps);
  registerAdminPolicy(scope, deps);
  registerAdminReload(scope, deps);
  registerAdminKms(scope, deps);
  registerAdminFleet(scope, deps);
}
