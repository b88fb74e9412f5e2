/**
 * Bills each authenticated /v1 request's KMS calls to its principal: the request's KmsTrace
 * (which key-guard, the key directory and the envelope service already carry) gets the
 * principal's budget and becomes the owner of the data keys it fetches.
 */
import type { FastifyInstance } from 'fastify';
import type { KmsBudgets } from '../envelope/kms-budget.js';

export function registerKmsBilling(scope: FastifyInstance, budgets: KmsBudgets): void {
  scope.addHook('preHandler', async (request) => {
    const principal = request.principal;
    if (principal && request.audit) request.audit.trace.billTo(principal.id, budgets.payerFor(principal.id));
  });
}
