/**
 * The caller's `x-request-id` (a load balancer's or the client's trace id). Never our request
 * id: a caller could otherwise choose, reuse or collide the id that names its audit event. It
 * is kept beside ours, in the audit event and the access log, for joining with the caller's
 * logs; anything that is not a short token is dropped so it cannot forge log or audit lines.
 */
import type { FastifyRequest } from 'fastify';

const CALLER_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function callerRequestIdOf(request: FastifyRequest): string | undefined {
  const given = request.headers['x-request-id'];
  return typeof given === 'string' && CALLER_REQUEST_ID.test(given) ? given : undefined;
}
