/**
 * Timeouts of the streaming routes. REQUEST_TIMEOUT_MS bounds a whole request, body included:
 * right for a JSON body, wrong for a stream, whose body may take hours at a steady rate. Node
 * enforces it server-wide (its connections check reports an expired request as a
 * `clientError` once, then forgets it), so the streaming routes mark their socket and the
 * server's clientError handler ignores that one report for them. Instead, a stream is cut when
 * no byte moved in either direction for STREAM_IDLE_TIMEOUT_MS: the socket's own inactivity
 * timer, set for the request (Node re-arms it on every read and write).
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';

const streamingSockets = new WeakSet<Socket>();
const exempted = new WeakSet<Server>();

/** Wraps the server's clientError handlers: a stream's socket is not cut by REQUEST_TIMEOUT_MS. */
export function exemptStreamsFromRequestTimeout(server: Server): void {
  if (exempted.has(server)) return;
  exempted.add(server);
  const handlers = server.listeners('clientError') as ((error: NodeJS.ErrnoException, socket: Socket) => void)[];
  server.removeAllListeners('clientError');
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT' && streamingSockets.has(socket)) return;
    for (const handler of handlers) handler.call(server, error, socket);
  });
}

/** Arms the idle timer for this request's socket; `onIdle` runs when it fires. */
export function watchIdle(request: FastifyRequest, reply: FastifyReply, idleMs: number, onIdle: () => void): void {
  const socket = request.raw.socket;
  streamingSockets.add(socket);
  socket.setTimeout(idleMs);
  // A listener on the response keeps Node from destroying the socket itself: onIdle decides.
  reply.raw.on('timeout', onIdle);
  reply.raw.once('close', () => {
    streamingSockets.delete(socket);
    reply.raw.off('timeout', onIdle);
  });
}
