/**
 * The keys of everything kept per caller. Defined here once, so no structure can key by the
 * bare id by mistake: an API key `reports-service` and a JWT whose subject is
 * `reports-service` are different callers and never share, fill or drain each other's
 * in-flight cap, request turns, refusal holds, rate-limit bucket, KMS budget or cache share.
 */
import type { Principal } from './principal.js';

/**
 * One principal: `<method>:<id>` (`api-key:reports-service`, `jwt:reports-service`). Keys what
 * belongs to a single caller: in-flight cap, request turns, refusal holds, rate limit, memory.
 */
export function principalKey(principal: Pick<Principal, 'authMethod' | 'id'>): string {
  return `${principal.authMethod}:${principal.id}`;
}

/**
 * The group a principal shares its data-key cache share and KMS budget (token bucket, KMS
 * concurrency and pace) with: `tenant:<name>` when the policy gives it a tenant, else the
 * principal alone (its principalKey). So minting more principals of one tenant buys it no
 * more cache and no more KMS calls.
 */
export function tenantKey(principal: Pick<Principal, 'authMethod' | 'id' | 'tenant'>): string {
  return principal.tenant === undefined ? principalKey(principal) : `tenant:${principal.tenant}`;
}
