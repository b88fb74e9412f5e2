/**
 * One error handler and one not-found handler for the whole app: every failure leaves as an
 * RFC 9457 problem (application/problem+json) and is noted on the request's audit record.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AccessDeniedError } from './key-guard.js';
import { describeError, titleOf, type ProblemDescription } from './problem.js';
import type { Problem } from './schemas.js';

export function problemBody(request: FastifyRequest, problem: Pick<ProblemDescription, 'status' | 'code' | 'detail'>): Problem {
  return {
    type: `https://envelope-service.internal/problems/${problem.code}`,
    title: titleOf(problem.status),
    status: problem.status,
    detail: problem.detail,
    code: problem.code,
    requestId: request.id,
  };
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler(async (error, request, reply) => {
    const problem = describeError(error);
    if (problem.status >= 500 && problem.code === 'InternalError') {
      // A bug. Log the stack, never the message of an upstream error that may quote input.
      request.log.error({ errorName: (error as Error)?.name, stack: (error as Error)?.stack }, 'unhandled error');
    }
    if (request.audit) {
      request.audit.errorCode = problem.code;
      request.audit.errorMessage = problem.detail;
      if (error instanceof AccessDeniedError) request.audit.denyReason = error.reason;
    }
    if (problem.retryAfterSeconds !== undefined) reply.header('retry-after', String(problem.retryAfterSeconds));
    for (const [name, value] of Object.entries(problem.headers ?? {})) reply.header(name, value);
    return reply.code(problem.status).type('application/problem+json').send(problemBody(request, problem));
  });

  app.setNotFoundHandler(async (request, reply) => {
    return reply
      .code(404)
      .type('application/problem+json')
      .send(problemBody(request, { status: 404, code: 'RouteNotFound', detail: 'no such route' }));
  });
}
