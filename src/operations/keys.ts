/**
 * List keys: the keys this caller may use and what it may do with each, with the policy rules
 * behind it and the context each rule requires (claim bindings resolved to the caller's own
 * claims): what a caller needs to build a request the policy accepts. Keys are found through
 * their aliases (KMS ListAliases); a key with no alias is usable by ARN but not listed. Key
 * sets are listed as `keyset/NAME`.
 */
import { operationsForKey, type Grant } from '../authz/policy.js';
import { withFacts, type Caller, type OperationDeps } from './operation.js';

export function listKeys(deps: OperationDeps, caller: Caller) {
  return withFacts(caller, async (facts) => {
    const { principal, policy } = caller;
    const grants = policy.listGrants(principal);
    // No grant, nothing to list: no reason to ask KMS for its aliases.
    if (grants.length === 0) {
      facts.responseElements = { keyCount: 0 };
      return [];
    }
    const byKey = new Map<string, { aliases: string[]; names: string[] }>();
    for (const alias of await deps.directory.listAliases(caller.kms)) {
      const entry = byKey.get(alias.keyArn) ?? { aliases: [], names: [alias.keyArn] };
      entry.aliases.push(alias.aliasName);
      entry.names.push(alias.aliasName, alias.aliasArn);
      byKey.set(alias.keyArn, entry);
    }
    // Key sets are listed by the name callers use for them.
    for (const name of deps.keySets.current.sets.keys()) byKey.set(`keyset/${name}`, { aliases: [], names: [`keyset/${name}`] });
    const keys = [...byKey]
      .map(([keyId, { aliases, names }]) => ({
        keyId,
        aliases: aliases.sort(),
        operations: [...operationsForKey(grants, names)],
        grants: grants.flatMap((grant) => grantOnKey(grant, names)),
      }))
      .filter((key) => key.operations.length > 0)
      .sort((a, b) => (a.aliases[0] ?? a.keyId).localeCompare(b.aliases[0] ?? b.keyId));
    facts.responseElements = { keyCount: keys.length };
    return keys;
  });
}

/** The grant as it applies to a key known by `names`: nothing when its key patterns miss them all. */
function grantOnKey(grant: Grant, names: readonly string[]) {
  const operations = operationsForKey([grant], names);
  if (operations.length === 0) return [];
  const { required, equals, optional, allowOthers } = grant.context;
  return [
    {
      rule: grant.ruleId,
      operations,
      context: { required: [...required].sort(), equals: { ...equals }, optional: [...optional].sort(), allowOthers },
      ...(grant.maxPlaintextBytes === undefined ? {} : { maxPlaintextBytes: grant.maxPlaintextBytes }),
      ...(grant.rewrapTo === undefined ? {} : { rewrapTo: [...grant.rewrapTo] }),
    },
  ];
}
