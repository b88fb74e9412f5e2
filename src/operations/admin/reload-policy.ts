/**
 * Reload the policy (`admin:policy`): the same reload as SIGHUP (read, validate, compile, then
 * swap). An invalid file keeps the policy in force and answers 422 with its errors, each with
 * line and column. Authorized by the policy in force before the reload. With a fleet
 * (REDIS_URL), a valid reload is then asked of every other replica (each re-reads its own
 * POLICY_FILE) and the answer lists each one's digest: equal digests mean one policy in force.
 */
import { ProblemError } from '../errors.js';
import { withFacts } from '../operation.js';
import { authorizeAdmin, type AdminCaller, type AdminDeps } from './admin.js';
import { issueJson } from './policy-state.js';
import { fleetFacts, originOf } from './fleet.js';

export function reloadPolicy(deps: AdminDeps, caller: AdminCaller) {
  return withFacts(caller, async (facts) => {
    authorizeAdmin(deps, caller, 'admin:policy', facts);
    const result = await deps.policy.reload();
    if (!result.ok) {
      facts.responseElements = { policyDigest: deps.policy.current.digest, policyReloaded: false };
      throw new ProblemError(422, 'PolicyInvalid', 'the policy file is invalid; the policy in force is unchanged', undefined, {
        errors: result.issues.map(issueJson),
      });
    }
    facts.responseElements = { policyDigest: result.digest, policyReloaded: true };
    const local = { changed: result.changed, digest: result.digest, loadedAt: deps.policy.current.loadedAt.toISOString() };
    if (!deps.fleet) return local;
    const fleet = await deps.fleet.broadcast({ kind: 'reload' }, originOf(caller), { instanceId: deps.instanceId, ok: true, digest: result.digest });
    Object.assign(facts.responseElements, fleetFacts(fleet));
    return { ...local, fleet };
  });
}
