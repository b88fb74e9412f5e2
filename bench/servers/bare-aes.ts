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

/**
 * IVs come from a pool of CSPRNG output refilled 4 KiB at a time, as the service takes its
 * own (src/format/message-crypto.ts) and as any service at this rate would: one randomFillSync
 * per request costs more than the 1 KiB seal itself.
 */
const IV_POOL = Buffer.allocUnsafeSlow(4096);
let ivPoolAt = IV_POOL.length;

function randomIv(target: Buffer): Buffer {
  if (ivPoolAt + IV > IV_POOL.length) {
    randomFillSync(IV_POOL);
    ivPoolAt = 0;
  }
  IV_POOL.copy(target, 0, ivPoolAt, ivPoolAt + IV);
  ivPoolAt += IV;
  return target;
}

function seal(plaintext: Buffer): Buffer {
  const out = Buffer.allocUnsafe(IV + plaintext.length + TAG);
  const iv = randomIv(out.subarray(0, IV));
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

/**
 * Two routes that split (b) into its parts, for the floor's accounting (docs/BENCHMARKS.md, CPU
 * per request): /reencode does (b)'s base64 both ways with no seal, /encrypt-thrice seals the
 * same plaintext three times and answers the last, so (thrice - b) / 2 is what one more seal
 * costs the serving process.
 */
const encryptSchema = {
  body: { type: 'object', required: ['plaintext'], properties: { plaintext: field, context }, additionalProperties: false },
  response: { 200: { type: 'object', properties: { ciphertext: field } } },
} as const;

app.post('/reencode', { schema: encryptSchema }, async (request) => {
  const { plaintext } = request.body as { plaintext: string };
  return { ciphertext: Buffer.from(plaintext, 'base64').toString('base64') };
});

app.post('/encrypt-thrice', { schema: encryptSchema }, async (request) => {
  const plaintext = Buffer.from((request.body as { plaintext: string }).plaintext, 'base64');
  seal(plaintext);
  seal(plaintext);
  return { ciphertext: seal(plaintext).toString('base64') };
});

app.post('/encrypt', { schema: encryptSchema }, async (request) => {
  const { plaintext } = request.body as { plaintext: string };
  return { ciphertext: seal(Buffer.from(plaintext, 'base64')).toString('base64') };
});

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
