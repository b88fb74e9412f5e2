/**
 * What a replica does with a fleet command sent by another: the same evict or policy reload
 * as the admin API's, then one FleetActionApplied audit event carrying the originating request
 * id, so the audit trail of every replica shows the action reaching it. Authorization was the
 * originating replica's (the command is only sent after it allowed the request).
 */
import type { Logger } from 'pino';
import type { AuditSink } from '../audit/sink.js';
import type { FleetActionDetails } from '../audit/event.js';
import type { PolicyStore } from '../authz/store.js';
import type { EnvelopeService } from '../keys/envelope-service.js';
import type { FleetAction, FleetOrigin, ReplicaResult } from '../operations/admin/fleet.js';
import type { ApplyFleetAction } from './fleet-bus.js';

export interface ApplyDeps {
  envelope: EnvelopeService;
  policy: PolicyStore;
  audit: AuditSink;
  logger: Logger;
  /** Counts each audit event written (the audit metrics). */
  onAudited?: () => void;
}

export function fleetApplier(deps: ApplyDeps): ApplyFleetAction {
  return async (action, origin, originInstance) => {
    const { outcome, result } = await carryOut(deps, action);
    const details: FleetActionDetails = {
      action: action.kind === 'evict' ? 'EvictDataKeys' : 'ReloadPolicy',
      originRequestId: origin.requestId,
      originInstance,
      principalType: origin.principalType as FleetActionDetails['principalType'],
      principalId: origin.principalId,
      requestParameters:
        action.kind === 'evict'
          ? {
              ...(action.keyNames ? { keyNames: action.keyNames } : {}),
              ...(action.context ? { encryptionContext: { ...action.context } } : {}),
              ...(action.all ? { all: true } : {}),
            }
          : null,
      outcome,
    };
    try {
      await deps.audit.recordFleetAction(details);
      deps.onAudited?.();
    } catch (error) {
      deps.logger.error({ errorName: (error as Error).name, originRequestId: origin.requestId }, 'fleet action done but not audited: the audit log is failing');
      return { ...result, ok: false, errorCode: 'AuditWriteFailed' };
    }
    deps.logger.info({ fleetAction: details.action, originRequestId: origin.requestId, originInstance, ...outcome }, 'fleet action applied');
    return result;
  };
}

async function carryOut(
  deps: ApplyDeps,
  action: FleetAction,
): Promise<{ outcome: FleetActionDetails['outcome']; result: Omit<ReplicaResult, 'instanceId'> }> {
  if (action.kind === 'evict') {
    const dropped = deps.envelope.evict(action.all ? {} : { ...(action.keyNames ? { keyNames: action.keyNames } : {}), ...(action.context ? { context: action.context } : {}) });
    const total = dropped.encrypt + dropped.decrypt;
    return { outcome: { droppedKeys: total }, result: { ok: true, dropped: total } };
  }
  const reloaded = await deps.policy.reload();
  if (reloaded.ok) return { outcome: { policyDigest: reloaded.digest, policyReloaded: true }, result: { ok: true, digest: reloaded.digest } };
  const digest = deps.policy.current.digest;
  return { outcome: { policyDigest: digest, policyReloaded: false, errorCode: 'PolicyInvalid' }, result: { ok: false, digest, errorCode: 'PolicyInvalid' } };
}
