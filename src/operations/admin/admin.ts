/**
 * What every admin operation (/v1/admin/...) shares: its dependencies, its caller, and the one
 * authorization check. Admin operations act on the replica that answers (its cache, its policy
 * snapshot, its view of KMS), never on a KMS key, so they are granted by their own policy
 * operations (`admin:read`, `admin:cache`, `admin:policy`; docs/POLICY.md).
 */
import type { AdminOperation } from '../../authz/principal.js';
import type { PolicyStore } from '../../authz/store.js';
import type { KmsPayers } from '../../kms/call-context.js';
import type { EnvelopeService } from '../../keys/envelope-service.js';
import type { KmsCallStats } from '../../kms/call-stats.js';
import type { CircuitBreaker } from '../../kms/circuit-breaker.js';
import type { RegionalKms } from '../../kms/regional.js';
import type { KeyDirectory } from '../../keys/key-directory.js';
import { AccessDeniedError } from '../errors.js';
import type { AuditFacts, Caller } from '../operation.js';
import type { FleetActions } from './fleet.js';

export interface AdminDeps {
  envelope: EnvelopeService;
  directory: KeyDirectory;
  policy: PolicyStore;
  circuit: CircuitBreaker;
  kmsCalls: KmsCallStats;
  budgets: KmsPayers;
  kms: { provider: string; region: string | undefined; breakerFailures: number; breakerCooldownMs: number };
  /** INSTANCE_ID, or the host name: this replica in fleet answers. */
  instanceId: string;
  /** When this process composed the service. */
  startedAt: Date;
  /** The other replicas, through Redis (REDIS_URL); undefined: this replica is alone, as far as it knows. */
  fleet?: FleetActions;
  /** Every region's KMS stack (key sets). */
  regions: Pick<RegionalKms, 'stacks' | 'home'>;
}

export interface AdminCaller extends Caller {
  /** The request came from a loopback address (the only place dev mode grants admin). */
  readonly fromLoopback: boolean;
  /** The service's request id: carried to every replica a fleet action reaches, for their audit events. */
  readonly requestId: string;
}

/**
 * Allows the operation or throws AccessDeniedError (403, the reason for the audit log only).
 * In dev mode the dev token holds every right, admin included, but only from loopback: dev
 * mode refuses to listen elsewhere unless DEV_MODE_ALLOW_NETWORK, and even then the admin API
 * stays on the machine.
 */
export function authorizeAdmin(deps: AdminDeps, caller: AdminCaller, operation: AdminOperation, facts: AuditFacts): void {
  if (deps.policy.current.mode === 'dev' && !caller.fromLoopback) {
    throw new AccessDeniedError(`dev mode: "${operation}" is granted on loopback only`);
  }
  const decision = caller.policy.decideAdmin(caller.principal, operation);
  if (!decision.allowed) throw new AccessDeniedError(decision.reason);
  facts.ruleId = decision.ruleId;
}
