/**
 * One error handler and one not-found handler for the whole app: every failure leaves as an
 * RFC 9457 problem (send-problem.ts), and its code is kept for the request's audit event.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { describeError } from './problem.js';
import { sendProblem } from './send-problem.js';

export function registerErrorHandling(app: FastifyInstance): void {
  // Every static path and its methods, collected as routes are added (this hook is registered
  // before any route), so that a known path asked with another method gets 405 Method Not
  // Allowed with an Allow header (RFC 9110 section 15.5.6) instead of a misleading 404.
  const methodsByPath = new Map<string, Set<string>>();
  app.addHook('onRoute', (route) => {
    if (route.url.includes(':') || route.url.includes('*')) return;
    const methods = methodsByPath.get(route.url) ?? new Set<string>();
    for (const method of [route.method].flat()) methods.add(method.toUpperCase());
    methodsByPath.set(route.url, methods);
  });

  /** 405 + Allow when the path exists but not for this method; undefined otherwise. */
  const allowedMethods = (request: FastifyRequest): { path: string; allow: string } | undefined => {
    const path = request.url.split('?', 1)[0] ?? request.url;
    const methods = methodsByPath.get(path);
    return methods && !methods.has(request.method) ? { path, allow: [...methods].sort().join(', ') } : undefined;
  };
  const sendMethodNotAllowed = (request: FastifyRequest, reply: FastifyReply, { path, allow }: { path: string; allow: string }) =>
    sendProblem(request, reply.header('allow', allow), { status: 405, code: 'MethodNotAllowed', detail: `${path} does not support this method` });

  app.setErrorHandler(async (error, request, reply) => {
    // A request that matched no route can still fail before the not-found handler runs (body
    // parsing: Fastify insists on a Content-Type for QUERY, for one). If only the method is
    // wrong, say so: 405, whatever the body.
    const wrongMethod = request.is404 ? allowedMethods(request) : undefined;
    if (wrongMethod) return sendMethodNotAllowed(request, reply, wrongMethod);
    const problem = describeError(error);
    if (problem.status >= 500 && problem.code === 'InternalError') {
      // A bug. Log the stack, never the message of an upstream error that may quote input.
      request.log.error({ errorName: (error as Error)?.name, stack: (error as Error)?.stack }, 'unhandled error');
    }
    if (request.audit) request.audit.error = { code: problem.code, message: problem.detail };
    return sendProblem(request, reply, problem);
  });

  app.setNotFoundHandler(async (request, reply) => {
    const wrongMethod = allowedMethods(request);
    if (wrongMethod) return sendMethodNotAllowed(request, reply, wrongMethod);
    return sendProblem(request, reply, { status: 404, code: 'RouteNotFound', detail: 'no such route' });
  });
}
