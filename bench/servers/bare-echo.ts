/**
 * Baseline (a), the framework's ceiling: a bare Fastify route that takes the same JSON body as
 * /v1/encrypt (or /v1/decrypt) and echoes its base64 field back. JSON parsing, a body schema
 * without patterns, and fast-json-stringify on the response: the least any Fastify JSON route
 * does. No auth, no policy, no crypto, no audit, no logging.
 */
import Fastify from 'fastify';
import { fail, serve } from './common.js';

const bodyLimit = Number(process.env.BODY_LIMIT_BYTES ?? 8 * 1024 * 1024);

const app = Fastify({ logger: false, bodyLimit });
const field = { type: 'string' } as const;
app.post(
  '/echo',
  {
    schema: {
      body: {
        type: 'object',
        properties: { plaintext: field, ciphertext: field, context: { type: 'object', additionalProperties: field } },
        additionalProperties: false,
      },
      response: { 200: { type: 'object', properties: { plaintext: field, ciphertext: field } } },
    },
  },
  async (request) => {
    const body = request.body as { plaintext?: string; ciphertext?: string };
    return body.plaintext !== undefined ? { plaintext: body.plaintext } : { ciphertext: body.ciphertext };
  },
);

serve(app).catch(fail);
