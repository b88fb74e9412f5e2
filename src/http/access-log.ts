/**
 * The access log: one self-contained line per answered request (method, url, client, status,
 * time, reqId, and the caller's own x-request-id as callerRequestId), instead of Fastify's
 * default two info lines ("incoming request" on arrival, "request completed" with only the
 * status): each line is a serialisation and a write, so one line costs half of two. The arrival
 * line stays available at debug level, for chasing a request that never completes.
 */
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import { callerRequestIdOf } from './caller-request-id.js';

export class AccessLog extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    if (this.isLogDisabled(request)) return;
    request.log.debug({ req: request, callerRequestId: callerRequestIdOf(request) }, 'incoming request');
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    const callerRequestId = callerRequestIdOf(request);
    if (error) {
      reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime, callerRequestId }, 'request errored');
    } else {
      reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime, callerRequestId }, 'request completed');
    }
  }
}
