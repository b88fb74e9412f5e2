/**
 * The fleet as the admin operations see it: the replica's own id, and, with Redis configured
 * (REDIS_URL), a way to ask every other replica to do what this one just did and to learn who
 * confirmed. The implementation is src/fleet/; the operations know only this interface.
 */
import type { EncryptionContext } from '../../kms/provider.js';

/** What another replica is asked to do: evict by the names this replica resolved, or reload the policy file. */
export type FleetAction =
  | { kind: 'evict'; all?: true; keyNames?: string[]; context?: EncryptionContext }
  | { kind: 'reload' };

/** Who asked: carried to every replica for its audit event. */
export interface FleetOrigin {
  requestId: string;
  principalType: string;
  principalId: string;
}

/** One replica's answer. */
export interface ReplicaResult {
  instanceId: string;
  ok: boolean;
  /** evict: data keys dropped there. */
  dropped?: number;
  /** reload: the digest of the policy in force there afterwards. */
  digest?: string;
  /** Why it did not succeed (a problem code, e.g. PolicyInvalid). */
  errorCode?: string;
}

export interface FleetReport {
  /** Replicas announced (heartbeat) when the action was sent, this one included. */
  expected: string[];
  /** Answers received within the timeout, this replica's first. */
  confirmed: ReplicaResult[];
  /** Expected replicas that did not answer within the timeout. */
  missing: string[];
  timeoutMs: number;
  /** Set when the action could not be sent (Redis unreachable): only this replica acted. */
  degraded?: string;
}

export interface ReplicaSeen {
  instanceId: string;
  startedAt: string;
  version: string;
  /** Last heartbeat, ISO 8601. */
  seenAt: string;
}

export interface FleetView {
  redis: 'connected' | 'unreachable';
  replicas: ReplicaSeen[];
}

export interface FleetActions {
  /** Sends the action to every other replica; resolves with who confirmed within the timeout (never rejects). */
  broadcast(action: FleetAction, origin: FleetOrigin, self: ReplicaResult): Promise<FleetReport>;
  /** The replicas announced now (or last seen, when Redis is unreachable). */
  view(): Promise<FleetView>;
}

/** The origin of a fleet action: the request and the principal behind it. */
export function originOf(caller: { requestId: string; principal: { authMethod: string; id: string } }): FleetOrigin {
  return { requestId: caller.requestId, principalType: caller.principal.authMethod, principalId: caller.principal.id };
}

/** The fleet outcome as the originating request's audit event records it (counts and ids). */
export function fleetFacts(report: FleetReport): { replicasExpected: number; replicasConfirmed: number; replicasMissing: string[] } {
  return { replicasExpected: report.expected.length, replicasConfirmed: report.confirmed.length, replicasMissing: report.missing };
}
