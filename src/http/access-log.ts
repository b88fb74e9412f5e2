/**
 * The access log: one self-contained line per answered request (method, url, client, status,
 * time, reqId, and the caller's own x-request-id as callerRequestId), instead of Fastify's default two info lines ("incoming request" on arrival,
 * "request completed" with only the status). Each line is a serialisation and a synchronous
 * write; the app log cost 13–22 µs per 1 KiB request with two lines and pino's redact paths,
 * 6–8 µs with one line and the hand-written backstop (bench case 5, docs/BENCHMARKS.md). The
 * arrival line stays available at debug level, for chasing a request that never completes.
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
