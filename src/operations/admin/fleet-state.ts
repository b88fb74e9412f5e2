/**
 * Fleet state (`admin:read`): the replicas announced through Redis (their heartbeats), as the
 * replica that answers sees them. Without REDIS_URL the fleet is this replica alone.
 */
import { SERVICE_VERSION } from '../../version.js';
import { withFacts } from '../operation.js';
import { authorizeAdmin, type AdminCaller, type AdminDeps } from './admin.js';

export function fleetState(deps: AdminDeps, caller: AdminCaller) {
  return withFacts(caller, async (facts) => {
    authorizeAdmin(deps, caller, 'admin:read', facts);
    const view = deps.fleet
      ? await deps.fleet.view()
      : { redis: 'off' as const, replicas: [{ instanceId: deps.instanceId, startedAt: deps.startedAt.toISOString(), version: SERVICE_VERSION, seenAt: new Date().toISOString() }] };
    facts.responseElements = { replicaCount: view.replicas.length };
    return { instanceId: deps.instanceId, redis: view.redis, replicas: view.replicas };
  });
}
