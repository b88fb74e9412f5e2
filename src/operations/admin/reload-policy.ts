/**
 * Reload the policy (`admin:policy`): the same reload as SIGHUP (read, validate, compile, then
 * swap). An invalid file keeps the policy in force and answers 422 with its errors, each with
 * line and column. Authorized by the policy in force before the reload.
 */
import { ProblemError } from '../errors.js';
import { withFacts } from '../operation.js';
import { authorizeAdmin, type AdminCaller, type AdminDeps } from './admin.js';
import { issueJson } from './policy-state.js';

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
    return { changed: result.changed, digest: result.digest, loadedAt: deps.policy.current.loadedAt.toISOString() };
  });
}
