/**
 * Policy state (`admin:read`): which policy this replica enforces (digest, load time, source)
 * and how its last reload went, with the file's errors located by line and column.
 */
import type { LastReload, PolicyStore } from '../../authz/store.js';
import { withFacts } from '../operation.js';
import { authorizeAdmin, type AdminCaller, type AdminDeps } from './admin.js';

export function policyState(deps: AdminDeps, caller: AdminCaller) {
  return withFacts(caller, async (facts) => {
    authorizeAdmin(deps, caller, 'admin:read', facts);
    const state = describePolicy(deps.policy);
    facts.responseElements = { policyDigest: state.digest };
    return state;
  });
}

export function describePolicy(store: PolicyStore) {
  const current = store.current;
  const last = store.lastReload;
  return {
    mode: current.mode,
    ...(current.file === undefined ? {} : { source: current.file }),
    digest: current.digest,
    loadedAt: current.loadedAt.toISOString(),
    ...(current.summary === undefined ? {} : { rules: current.summary.rules, apiKeys: current.summary.apiKeys, jwt: current.summary.jwt }),
    ...(last === undefined ? {} : { lastReload: describeReload(last) }),
  };
}

function describeReload(last: LastReload) {
  const at = last.at.toISOString();
  if (last.ok) return { at, ok: true, changed: last.changed, digest: last.digest };
  return { at, ok: false, errors: last.issues.map(issueJson) };
}

export function issueJson(issue: { line?: number; column?: number; field: string; message: string }) {
  return {
    ...(issue.line === undefined ? {} : { line: issue.line }),
    ...(issue.column === undefined ? {} : { column: issue.column }),
    field: issue.field,
    message: issue.message,
  };
}
