/**
 * KMS state (`admin:read`) as this replica sees it: the circuit breaker, recent error rate and
 * latency per KMS operation, and each principal's KMS budget.
 */
import { withFacts } from '../operation.js';
import { authorizeAdmin, type AdminCaller, type AdminDeps } from './admin.js';

export function kmsState(deps: AdminDeps, caller: AdminCaller) {
  return withFacts(caller, async (facts) => {
    authorizeAdmin(deps, caller, 'admin:read', facts);
    const { provider, region, breakerFailures, breakerCooldownMs } = deps.kms;
    return {
      provider,
      ...(region === undefined ? {} : { region }),
      breaker: {
        state: deps.circuit.state,
        consecutiveFailures: deps.circuit.consecutiveFailures,
        failureThreshold: breakerFailures,
        cooldownMs: breakerCooldownMs,
      },
      windowMs: deps.kmsCalls.windowMs,
      operations: deps.kmsCalls.recent(),
      regions: deps.regions.stacks().map((stack) => ({
        region: stack.region,
        home: stack === deps.regions.home,
        breaker: { state: stack.circuit.state, consecutiveFailures: stack.circuit.consecutiveFailures },
        operations: stack.calls.recent(),
      })),
      budgets: deps.budgets
        .usage()
        .map(({ principal, tokens, burst, perSecond }) => ({ principal, tokensLeft: Math.floor(tokens), burst, perSecond }))
        .sort((a, b) => a.tokensLeft - b.tokensLeft || a.principal.localeCompare(b.principal)),
    };
  });
}
