/**
 * Keep-alive connections end with their last response once the app is closing.
 *
 * Fastify's close() calls Node's server.close(), which closes the connections idle at that
 * moment and then waits for every other one to end. A keep-alive connection busy with a request
 * at that moment stays open after its response, idle, until keepAliveTimeout (72 s), so a
 * SIGTERM with one such request in flight would outlast SHUTDOWN_GRACE_MS and exit 1 without
 * the audit log's final checkpoint. Once closing:
 * - a response not yet started says `Connection: close`: Node ends the socket after it, and the
 *   client knows not to send another request on it;
 * - a response whose headers went out before (a stream) closes its connection once it has
 *   finished, now idle.
 */
import type { FastifyInstance } from 'fastify';

export function registerCloseOnShutdown(app: FastifyInstance): void {
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });
  app.addHook('onResponse', (_request, _reply, done) => {
    // After Node's own 'finish' handling, which marks the connection idle.
    if (closing) setImmediate(() => app.server.closeIdleConnections());
    done();
  });
}
