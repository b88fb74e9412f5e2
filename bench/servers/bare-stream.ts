/**
 * The streaming baseline: a bare Fastify route that takes the raw request stream (the same
 * content-type parser hand-through as the /v1 stream routes) and pipes it back as the response. No
 * auth, no policy, no crypto, no audit: what the transport alone allows on this machine.
 */
import Fastify from 'fastify';
import { fail, serve } from './common.js';

const app = Fastify({ logger: false, requestTimeout: 0 });
app.removeAllContentTypeParsers();
app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));
app.post('/stream', async (request, reply) => reply.type('application/octet-stream').send(request.body));

serve(app).catch(fail);
