/**
 * Baseline (b), the floor of any encrypting service: bare Fastify routes with the same JSON
 * in/out shape as /v1/encrypt and /v1/decrypt, doing only base64 -> AES-256-GCM (fixed key,
 * random 96-bit IV, node:crypto) -> base64. No auth, no policy, no KMS, no key derivation, no
 * header, no audit, no logging, no input validation beyond "is a string".
 *
 * POST /encrypt-binary is the same encryption over application/octet-stream in and out: what
 * a binary transport would cost, for the large-payload discussion (docs/BENCHMARKS.md).
 */
import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto';
import Fastify from 'fastify';
import { BARE_AES_KEY_HEX } from '../lib/constants.js';
import { fail, serve } from './common.js';

const bodyLimit = Number(process.env.BODY_LIMIT_BYTES ?? 8 * 1024 * 1024);
const key = Buffer.from(BARE_AES_KEY_HEX, 'hex');
const IV = 12;
const TAG = 16;

function seal(plaintext: Buffer): Buffer {
  const out = Buffer.allocUnsafe(IV + plaintext.length + TAG);
  const iv = randomFillSync(out.subarray(0, IV));
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG });
  let at = IV + cipher.update(plaintext).copy(out, IV);
  cipher.final();
  at += cipher.getAuthTag().copy(out, at);
  return out;
}

function open(sealed: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV), { authTagLength: TAG });
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG));
  const plaintext = decipher.update(sealed.subarray(IV, sealed.length - TAG));
  decipher.final();
  return plaintext;
}

const app = Fastify({ logger: false, bodyLimit });
const field = { type: 'string' } as const;
const context = { type: 'object', additionalProperties: field } as const;

app.post(
  '/encrypt',
  {
    schema: {
      body: { type: 'object', required: ['plaintext'], properties: { plaintext: field, context }, additionalProperties: false },
      response: { 200: { type: 'object', properties: { ciphertext: field } } },
    },
  },
  async (request) => {
    const { plaintext } = request.body as { plaintext: string };
    return { ciphertext: seal(Buffer.from(plaintext, 'base64')).toString('base64') };
  },
);

app.post(
  '/decrypt',
  {
    schema: {
      body: { type: 'object', required: ['ciphertext'], properties: { ciphertext: field, context }, additionalProperties: false },
      response: { 200: { type: 'object', properties: { plaintext: field } } },
    },
  },
  async (request) => {
    const { ciphertext } = request.body as { ciphertext: string };
    return { plaintext: open(Buffer.from(ciphertext, 'base64')).toString('base64') };
  },
);

app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit }, (_request, body, done) => done(null, body));
app.post('/encrypt-binary', async (request, reply) => {
  reply.type('application/octet-stream');
  return seal(request.body as Buffer);
});

serve(app).catch(fail);
