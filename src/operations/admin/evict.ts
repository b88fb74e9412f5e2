/**
 * Evict (`admin:cache`): drop and zero the cached data keys of a KMS key, of a context, of
 * both, or all of them, in this replica's encrypt and decrypt caches. The next request for a
 * dropped partition goes to KMS. The first move when a data key or a KMS key is suspected.
 * With a fleet (REDIS_URL), every other replica is then asked to drop the same keys, by the
 * names this replica resolved (so none of them needs KMS for it), and the answer says which
 * confirmed within the timeout.
 */
import type { EvictionSelector } from '../../keys/envelope-service.js';
import { ProblemError } from '../errors.js';
import { validContext } from '../context.js';
import { withFacts } from '../operation.js';
import { authorizeAdmin, type AdminCaller, type AdminDeps } from './admin.js';
import { fleetFacts, originOf, type FleetAction } from './fleet.js';

export interface EvictInput {
  all?: boolean;
  keyId?: string;
  context?: Readonly<Record<string, string>>;
}

export function evictDataKeys(deps: AdminDeps, caller: AdminCaller, input: EvictInput) {
  return withFacts(caller, async (facts) => {
    const scoped = input.keyId !== undefined || input.context !== undefined;
    facts.requestParameters = {
      ...(input.keyId === undefined ? {} : { keyId: input.keyId }),
      ...(input.context === undefined ? {} : { encryptionContext: input.context }),
      ...(input.all === undefined ? {} : { all: input.all }),
    };
    authorizeAdmin(deps, caller, 'admin:cache', facts);
    // Evicting everything is said out loud, never the result of a forgotten field.
    if (input.all === true && scoped) throw new ProblemError(400, 'InvalidEvictionScope', 'all: true takes no keyId or context');
    if (input.all !== true && !scoped) throw new ProblemError(400, 'InvalidEvictionScope', 'say what to evict: all: true, a keyId, a context, or a keyId and a context');
    const selector: EvictionSelector = {};
    if (input.keyId !== undefined) selector.keyNames = await keyNames(deps, caller, input.keyId);
    if (input.context !== undefined) selector.context = validContext(input.context);
    const dropped = deps.envelope.evict(selector);
    const total = dropped.encrypt + dropped.decrypt;
    facts.responseElements = { droppedKeys: total };
    const local = { dropped: total, encrypt: dropped.encrypt, decrypt: dropped.decrypt };
    if (!deps.fleet) return local;
    const action: FleetAction = {
      kind: 'evict',
      ...(input.all === true ? { all: true as const } : {}),
      ...(selector.keyNames ? { keyNames: [...selector.keyNames] } : {}),
      ...(selector.context ? { context: { ...selector.context } } : {}),
    };
    const fleet = await deps.fleet.broadcast(action, originOf(caller), { instanceId: deps.instanceId, ok: true, dropped: total });
    Object.assign(facts.responseElements, fleetFacts(fleet));
    return { ...local, fleet };
  });
}

/**
 * The name as given and, when KMS can tell, the key's ARN (cached entries are by ARN). When KMS
 * cannot answer (the incident this is for may be a KMS one), an ARN given as is still matches.
 */
async function keyNames(deps: AdminDeps, caller: AdminCaller, keyId: string): Promise<string[]> {
  try {
    return [keyId, await deps.directory.resolve(keyId, caller.kms)];
  } catch {
    return [keyId];
  }
}
