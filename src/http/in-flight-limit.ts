/**
 * At most MAX_IN_FLIGHT_PER_PRINCIPAL requests of one principal in progress at once: a caller
 * that opens many slow requests (large bodies, cold KMS partitions) holds that many slots, not
 * the whole instance's memory and event loop. Over it: 429 + Retry-After, audited like any
 * refusal. Runs after authentication, before the body is read.
 */
import type { FastifyInstance } from 'fastify';
import { ProblemError } from './problem.js';

export function registerInFlightLimit(scope: FastifyInstance, max: number): void {
  const inFlight = new Map<string, number>();
  const release = (principalId: string): void => {
    const left = (inFlight.get(principalId) ?? 1) - 1;
    if (left <= 0) inFlight.delete(principalId);
    else inFlight.set(principalId, left);
  };

  scope.addHook('onRequest', async (request, reply) => {
    const principalId = request.principal?.id;
    if (principalId === undefined) return;
    const current = inFlight.get(principalId) ?? 0;
    if (current >= max) {
      throw new ProblemError(429, 'TooManyInFlight', `more than ${max} requests of this principal are in progress`, 1);
    }
    inFlight.set(principalId, current + 1);
    // 'close' comes once per response, finished or abandoned by the client, so no slot leaks.
    reply.raw.once('close', () => release(principalId));
  });
}
