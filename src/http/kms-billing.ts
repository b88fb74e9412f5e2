/**
 * Bills each authenticated /v1 request's KMS calls to its principal: the request's KmsTrace
 * (which key-guard, the key directory and the envelope service already carry) gets the
 * principal's budget and becomes the owner of the data keys it fetches.
 */
import type { FastifyInstance } from 'fastify';
import { principalKey } from '../authz/principal.js';
import type { KmsBudgets } from '../envelope/kms-budget.js';

export function registerKmsBilling(scope: FastifyInstance, budgets: KmsBudgets): void {
  scope.addHook('preHandler', async (request) => {
    const principal = request.principal;
    if (!principal || !request.audit) return;
    // Keyed by method and id: an API key and a JWT with the same name are different payers.
    const payer = principalKey(principal);
    request.audit.trace.billTo(payer, budgets.payerFor(payer));
  });
}
