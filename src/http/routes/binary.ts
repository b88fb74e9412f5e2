/**
 * POST /v1/encrypt/binary and POST /v1/decrypt/binary: the same operations as /v1/encrypt and
 * /v1/decrypt (same policy, audit events, cache and limits) with raw bytes in the body instead
 * of base64 in JSON, for large payloads. JSON costs a third more bytes on the wire, and parsing,
 * validating and escaping a megabyte-long base64 string dominate the service's CPU for large
 * payloads; here the body goes from the socket to AES-GCM and back as is.
 *
 * The ciphertext is the binary envelope itself (docs/FORMAT.md): the exact bytes whose
 * base64url, after `ev1:`, is the JSON API's ciphertext. Either form converts to the other.
 *
 * These routes live in their own encapsulated scope: only here is application/octet-stream
 * parsed, and only octet-stream (a JSON body is a 415, as octet-stream is on the JSON routes).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { validContext, type EncryptionContext } from '../../operations/context.js';
import { decrypt } from '../../operations/decrypt.js';
import { encryptToEnvelope, type EnvelopeResult } from '../../operations/encrypt.js';
import { recordOutcome } from '../audit-trail.js';
import {
  AAD_HEADER,
  CONTEXT_HEADER,
  KEY_ID_HEADER,
  contextHeaderOf,
  headerSafe,
  parseContextHeader,
} from '../schemas/binary-headers.js';
import { EXAMPLE_CIPHERTEXT, KeyId, PASTE_HINT } from '../schemas/schemas.js';
import { COMMON_ERRORS, KEY_ERRORS, OPEN_ERRORS, SECURITY, callerOf, type V1Deps } from './common.js';
import { ProblemError } from '../problem.js';
import { AadHeader, ContextHeader, OCTET_STREAM, octetBody, octetResponse } from '../schemas/octet-stream-schemas.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** A plaintext buffer being sent; zeroed once the response is finished (or abandoned). */
    plaintextToZero: Buffer | undefined;
  }
}

const EncryptHeaders = Type.Object({
  [KEY_ID_HEADER]: Type.Optional(KeyId),
  [CONTEXT_HEADER]: Type.Optional(
    ContextHeader(
      'The KMS encryption context, form-encoded (`tenant=acme&purpose=billing`, UTF-8 percent-encoded). Default: none.',
      'tenant=acme&purpose=billing',
    ),
  ),
  [AAD_HEADER]: Type.Optional(AadHeader('Per-message associated data (base64, at most 3 KiB here). Required again to decrypt.')),
});

const DecryptHeaders = Type.Object({
  // No example: a pre-filled expected context would make the UI's default example a 422.
  [CONTEXT_HEADER]: Type.Optional(ContextHeader('If given, must equal the context stored in the ciphertext (422 otherwise).')),
  [AAD_HEADER]: Type.Optional(AadHeader('The associated data given to encrypt (base64).')),
});

const KEY_ID_RESPONSE_HEADER = { [KEY_ID_HEADER]: { type: 'string', description: 'ARN of the KMS key that wraps the data key.' } };

export async function registerBinary(scope: FastifyInstance, deps: V1Deps): Promise<void> {
  await scope.register(async function binaryRoutes(binary) {
    binary.removeAllContentTypeParsers();
    binary.addContentTypeParser(OCTET_STREAM, { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
    binary.decorateRequest('plaintextToZero', undefined);
    binary.addHook('onResponse', zeroSentPlaintext);
    binary.addHook('onRequestAbort', zeroSentPlaintext);

    binary.post(
      '/encrypt/binary',
      {
        config: { eventName: 'Encrypt' },
        schema: {
          operationId: 'encryptBinary',
          tags: ['envelope'],
          summary: 'Encrypt raw bytes (binary body)',
          description:
            'Like /v1/encrypt, for large payloads: the body is the plaintext itself and the answer is the binary ' +
            'envelope (the bytes whose base64url, after `ev1:`, is /v1/encrypt\'s ciphertext). Key, context and aad ' +
            'travel in headers. Same policy, audit event (`Encrypt`), cache and limits.',
          security: SECURITY,
          headers: EncryptHeaders,
          body: octetBody('The plaintext bytes.'),
          bodyExamples: {
            text: { summary: 'Any bytes (here the text "hello world")', value: 'hello world' },
          },
          response: {
            200: octetResponse('The binary envelope.', KEY_ID_RESPONSE_HEADER),
            ...COMMON_ERRORS,
            ...KEY_ERRORS,
          },
        },
      },
      async (request: FastifyRequest, reply: FastifyReply) => {
        const headers = request.headers as Record<string, string | undefined>;
        const plaintext = bodyBytes(request);
        let result: EnvelopeResult;
        try {
          const context = parseContextHeader(headers[CONTEXT_HEADER]);
          const aad = decodeAad(headers[AAD_HEADER]);
          // Before send(): send() runs onSend, which writes the audit event there and then.
          result = recordOutcome(
            request,
            await encryptToEnvelope(deps.operations, callerOf(request, deps), { plaintext, keyId: headers[KEY_ID_HEADER], context, aad }),
          );
        } finally {
          plaintext.fill(0);
        }
        return reply.type(OCTET_STREAM).header(KEY_ID_HEADER, headerSafe(result.keyArn)).send(result.envelope);
      },
    );

    binary.post(
      '/decrypt/binary',
      {
        config: { eventName: 'Decrypt' },
        schema: {
          operationId: 'decryptBinary',
          tags: ['envelope'],
          summary: 'Decrypt a binary envelope (binary body)',
          description:
            'Like /v1/decrypt, for large payloads: the body is a binary envelope from /v1/encrypt/binary (or the ' +
            'base64url-decoded part of an `ev1:` ciphertext), or an `ev1:` ciphertext as text, and the answer is the ' +
            'plaintext itself, with the key and the stored context in headers. Same policy, audit event (`Decrypt`), cache and limits.',
          security: SECURITY,
          headers: DecryptHeaders,
          body: octetBody('The binary envelope, or an `ev1:` ciphertext as text (trailing whitespace ignored).'),
          bodyExamples: {
            ciphertext: {
              summary: 'An ev1: ciphertext, as text',
              description:
                'The text form is accepted too, so a ciphertext can be pasted here (from /v1/encrypt, say). A binary envelope ' +
                '(what /v1/encrypt/binary answered) is sent as the raw bytes: `curl --data-binary @file`. ' + PASTE_HINT,
              value: EXAMPLE_CIPHERTEXT,
            },
          },
          response: {
            200: octetResponse('The plaintext bytes.', {
              ...KEY_ID_RESPONSE_HEADER,
              [CONTEXT_HEADER]: { type: 'string', description: 'The encryption context stored in the ciphertext, form-encoded.' },
            }),
            ...COMMON_ERRORS,
            ...KEY_ERRORS,
            ...OPEN_ERRORS,
          },
        },
      },
      async (request: FastifyRequest, reply: FastifyReply) => {
        const headers = request.headers as Record<string, string | undefined>;
        const ciphertext = bodyBytes(request);
        let expectedContext: EncryptionContext | undefined;
        try {
          const header = parseContextHeader(headers[CONTEXT_HEADER]);
          expectedContext = header === undefined ? undefined : validContext(header);
        } catch (error) {
          // Refused before the operation: audited with the size of what was sent, like a decrypt.
          const facts = { requestParameters: { ciphertextBytes: ciphertext.length }, kmsRequestIds: [] };
          return recordOutcome<never>(request, { ok: false, error, facts });
        }
        const aad = decodeAad(headers[AAD_HEADER]);
        // Before send(), which writes the audit event.
        const result = recordOutcome(request, await decrypt(deps.operations, callerOf(request, deps), { ciphertext, expectedContext, aad }));
        request.plaintextToZero = result.plaintext;
        return reply
          .type(OCTET_STREAM)
          .header(KEY_ID_HEADER, headerSafe(result.keyArn))
          .header(CONTEXT_HEADER, contextHeaderOf(result.context))
          .send(result.plaintext);
      },
    );
  });
}

/**
 * The parsed body. An empty body sent as application/octet-stream is a Buffer of zero bytes (a
 * valid, empty plaintext); no body at all, without a Content-Type, is a request that forgot
 * its payload, and an encrypt must not quietly turn that into a ciphertext of nothing.
 */
function bodyBytes(request: FastifyRequest): Buffer {
  if (Buffer.isBuffer(request.body)) return request.body;
  throw new ProblemError(400, 'InvalidRequest', 'the request has no body: send the bytes as application/octet-stream (an empty body is fine)');
}

function decodeAad(value: string | undefined): Buffer | undefined {
  return value === undefined ? undefined : Buffer.from(value, 'base64');
}

async function zeroSentPlaintext(request: FastifyRequest): Promise<void> {
  request.plaintextToZero?.fill(0);
  request.plaintextToZero = undefined;
}

