/**
 * The authz module's public surface. The HTTP layer needs only this file:
 *
 *   const store = config.POLICY_FILE
 *     ? await PolicyStore.fromFile(config.POLICY_FILE, { logger })   // throws PolicyError
 *     : PolicyStore.dev(config.DEV_TOKEN, { logger });
 *   process.on('SIGHUP', () => void store.reload());
 *
 *   // per request:
 *   const snap = store.current;                                      // one snapshot per request
 *   const principal = await snap.authenticator.authenticate(req.headers.authorization);
 *   const decision = snap.policy.decide(principal, { operation, keyNames, context, plaintextBytes });
 */
export type { AuthMethod, Operation, Principal } from './principal.js';
export { OPERATIONS } from './principal.js';
export { principalKey, tenantKey } from './principal-key.js';
export type { Authenticator, AuthenticatorOptions } from './authenticator.js';
export { createAuthenticator, createDevAuthenticator } from './authenticator.js';
export type { AuthFailureReason, PolicyIssue } from './errors.js';
export { AuthenticationError, AuthenticationUnavailableError, PolicyError, formatIssue } from './errors.js';
export type { Decision, DecisionRequest, Grant, RewrapDestinationRequest, RuleSpec } from './policy.js';
export { DEV_PRINCIPAL_ID, Policy, devPolicy, operationsForKey } from './policy.js';
export type { LoadedPolicy } from './policy-load.js';
export { loadPolicyFile } from './policy-load.js';
export { validatePolicyText } from './policy-validate.js';
export type { PolicyLogger, PolicySnapshot, ReloadResult } from './store.js';
export { PolicyStore } from './store.js';
export { wildcardMatch } from './glob.js';
