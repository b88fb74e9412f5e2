/**
 * GET /v1/keys: the keys this caller may use and what it may do with each, with the policy
 * rules behind it and the context each rule requires (claim bindings resolved to the caller's
 * own claims): what a caller needs to build a request the policy accepts. Keys are listed
 * through their aliases (KMS ListAliases); a key with no alias is usable by ARN but not listed.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { operationsForKey, type Grant } from '../../authz/policy.js';
import { KeysResponse } from '../schemas.js';
import { COMMON_ERRORS, SECURITY, callerOf, type V1Deps } from './common.js';

export function registerKeys(scope: FastifyInstance, deps: V1Deps): void {
  scope.withTypeProvider<TypeBoxTypeProvider>().get(
    '/keys',
    {
      config: { eventName: 'ListKeys' },
      schema: {
        operationId: 'listKeys',
        tags: ['keys'],
        summary: 'List the keys the caller may use',
        description:
          'The keys this caller may use, found through their aliases (KMS ListAliases), each with the operations ' +
          'the policy grants this principal on it, and under `grants` the rules that grant them with the encryption context ' +
          'each requires (claim bindings resolved to this caller\'s claims). A key without an alias is usable by ARN but not listed here.',
        security: SECURITY,
        response: { 200: KeysResponse, 401: COMMON_ERRORS[401], 429: COMMON_ERRORS[429], 503: COMMON_ERRORS[503] },
      },
    },
    async (request) => {
      const { principal, policy } = callerOf(request);
      const grants = policy.listGrants(principal);
      // No grant, nothing to list: no reason to ask KMS for its aliases.
      if (grants.length === 0) {
        request.audit!.responseElements = { keyCount: 0 };
        return { keys: [] };
      }
      const byKey = new Map<string, { aliases: string[]; names: string[] }>();
      for (const alias of await deps.directory.listAliases(request.audit!.trace)) {
        const entry = byKey.get(alias.keyArn) ?? { aliases: [], names: [alias.keyArn] };
        entry.aliases.push(alias.aliasName);
        entry.names.push(alias.aliasName, alias.aliasArn);
        byKey.set(alias.keyArn, entry);
      }
      const keys = [...byKey]
        .map(([keyId, { aliases, names }]) => ({
          keyId,
          aliases: aliases.sort(),
          operations: [...operationsForKey(grants, names)],
          grants: grants.flatMap((grant) => grantOnKey(grant, names)),
        }))
        .filter((key) => key.operations.length > 0)
        .sort((a, b) => (a.aliases[0] ?? a.keyId).localeCompare(b.aliases[0] ?? b.keyId));
      request.audit!.responseElements = { keyCount: keys.length };
      return { keys };
    },
  );
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
