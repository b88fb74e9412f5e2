/**
 * `Cache-Control: no-store` on every /v1 response, success or error: the answers carry
 * plaintext, plaintext data keys and ciphertexts, which no browser, proxy or client cache may
 * keep. Set in onSend at the root, so it also covers /v1 answers that no /v1 route produced
 * (an unknown /v1 path, a wrong method) and the audit trail's fail-closed 503.
 */
import type { FastifyInstance } from 'fastify';

const API_PREFIX = '/v1/';

export function registerNoStore(app: FastifyInstance): void {
  app.addHook('onSend', (request, reply, payload, done) => {
    if (request.url.startsWith(API_PREFIX) || request.url === '/v1') reply.header('cache-control', 'no-store');
    done(null, payload);
  });
}
