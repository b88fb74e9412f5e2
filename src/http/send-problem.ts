/**
 * The one way a problem (RFC 9457) leaves the service: its media type, its body, and the
 * status and headers that go with it. Used by the error and not-found handlers, the audit
 * trail's fail-closed path and load shedding.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { titleOf, type ProblemDescription } from './problem.js';
import type { Problem } from './schemas/schemas.js';

export const PROBLEM_MEDIA_TYPE = 'application/problem+json';

export function problemBody(request: FastifyRequest, problem: Pick<ProblemDescription, 'status' | 'code' | 'detail' | 'extensions'>): Problem {
  return {
    ...problem.extensions,
    type: `https://envelope-service.internal/problems/${problem.code}`,
    title: titleOf(problem.status),
    status: problem.status,
    detail: problem.detail,
    code: problem.code,
    requestId: request.id,
  };
}

/**
 * Sets the reply's status, Retry-After, extra headers and media type for `problem` and returns
 * the body, for the places that must return it rather than send it (onSend, under-pressure).
 */
export function prepareProblem(request: FastifyRequest, reply: FastifyReply, problem: ProblemDescription): Problem {
  if (problem.retryAfterSeconds !== undefined) reply.header('retry-after', String(problem.retryAfterSeconds));
  for (const [name, value] of Object.entries(problem.headers ?? {})) reply.header(name, value);
  reply.code(problem.status).type(PROBLEM_MEDIA_TYPE);
  return problemBody(request, problem);
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, problem: ProblemDescription): FastifyReply {
  return reply.send(prepareProblem(request, reply, problem));
}
