/**
 * POST /v1/encrypt/stream and POST /v1/decrypt/stream: payloads of any size as streams
 * (docs/FORMAT.md, "Stream format"), with the binary routes' headers, policy, cache and limits
 * and STREAM_MAX_BYTES instead of the body limits.
 *
 * The body is never read by Fastify: the request stream goes to the operation, whose session
 * seals or opens it (and holds its key); the route sends the session's output. How the bytes
 * travel (the spool on the ciphertext side, the idle timeout instead of REQUEST_TIMEOUT_MS) is
 * stream-transport.ts; the audit trail writes both of a stream's events (stream-audit.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { validContext } from '../../operations/context.js';
import type { AuditFacts } from '../../operations/operation.js';
import { startDecryptStream, startEncryptStream } from '../../operations/stream.js';
import { recordOutcome, recordStream } from '../audit-trail.js';
import {
  AAD_HEADER,
  CONTEXT_HEADER,
  KEY_ID_HEADER,
  contextHeaderOf,
  parseContextHeader,
} from '../schemas/binary-headers.js';
import { ProblemError } from '../problem.js';
import { AadHeader, ContextHeader, OCTET_STREAM, octetBody, octetResponse } from '../schemas/octet-stream-schemas.js';
import { StreamTransport } from '../streams/stream-transport.js';
import { EXAMPLE_STREAM_CIPHERTEXT, KeyId, PASTE_STREAM_HINT } from '../schemas/schemas.js';
import { COMMON_ERRORS, KEY_ERRORS, OPEN_ERRORS, SECURITY, callerOf, problem, type V1Deps } from './common.js';

const EncryptHeaders = Type.Object({
  [KEY_ID_HEADER]: Type.Optional(KeyId),
  [CONTEXT_HEADER]: Type.Optional(ContextHeader('The KMS encryption context, form-encoded (`tenant=acme&purpose=backup`). Default: none.')),
  [AAD_HEADER]: Type.Optional(AadHeader('Associated data bound to every segment (base64). Required again to decrypt.')),
});

const DecryptHeaders = Type.Object({
  [CONTEXT_HEADER]: Type.Optional(ContextHeader('If given, must equal the context stored in the stream header (422 otherwise).')),
  [AAD_HEADER]: Type.Optional(AadHeader('The associated data given to encrypt (base64).')),
});

const STREAM_ERRORS = {
  408: problem(408, 'No byte in either direction for STREAM_IDLE_TIMEOUT_MS before the answer started.', 'StreamIdleTimeout', 'no byte of the stream arrived for 30000 ms'),
} as const;

const KEY_ID_RESPONSE_HEADER = { [KEY_ID_HEADER]: { type: 'string', description: 'ARN of the KMS key that wraps the data key.' } };

const MID_STREAM =
  'A client that sends its whole body before reading the answer is served too (the service spools ciphertext to disk meanwhile, within ' +
  'STREAM_SPOOL_MAX_BYTES_PER_PRINCIPAL). No byte either way for STREAM_IDLE_TIMEOUT_MS ends the stream (408 before the 200). ' +
  'Once the 200 is sent, a failure (a segment failing authentication, the stream exceeding STREAM_MAX_BYTES, the spool quota, ' +
  'the idle timeout, the audit log failing) ' +
  'ends the response abnormally: the connection is closed without the chunked terminator. A client must treat a response that did ' +
  'not end cleanly as failed and discard what it received (curl exits with 18 or 56).';

export async function registerStream(scope: FastifyInstance, deps: V1Deps): Promise<void> {
  const maxBytes = deps.config.STREAM_MAX_BYTES;
  const transport = new StreamTransport(deps.config, scope.services?.metrics);
  await scope.register(async function streamRoutes(streams) {
    transport.register(streams);

    streams.post(
      '/encrypt/stream',
      {
        config: { eventName: 'EncryptStream' },
        schema: {
          operationId: 'encryptStream',
          tags: ['envelope'],
          summary: 'Encrypt a stream of any size',
          description:
            'For payloads larger than BODY_LIMIT_BYTES: the body is the plaintext, sent with a Content-Length or chunked, up to ' +
            'STREAM_MAX_BYTES; the answer is a stream ciphertext (docs/FORMAT.md, "Stream format"), sent as it is produced, in ' +
            'constant memory. Key, context and aad travel in headers as on /v1/encrypt/binary; same policy (judged on the ' +
            'Content-Length, or on STREAM_MAX_BYTES without one) and cache. Audited twice: `stream.phase` started, then ended. ' +
            MID_STREAM,
          security: SECURITY,
          headers: EncryptHeaders,
          body: octetBody('The plaintext bytes, any length up to STREAM_MAX_BYTES.'),
          bodyExamples: {
            text: { summary: 'Any bytes (here the text "hello world"); large payloads: `curl -X POST -T file` (streams it)', value: 'hello world' },
          },
          response: {
            200: octetResponse('The stream ciphertext.', KEY_ID_RESPONSE_HEADER),
            ...COMMON_ERRORS,
            ...STREAM_ERRORS,
            ...KEY_ERRORS,
          },
        },
      },
      async (request: FastifyRequest, reply: FastifyReply) => {
        const headers = request.headers as Record<string, string | undefined>;
        const input = transport.body(request);
        const declaredBytes = declaredLength(request, maxBytes, (bytes) => ({ requestParameters: { plaintextBytes: bytes }, kmsRequestIds: [] }));
        const context = parseContextHeader(headers[CONTEXT_HEADER]);
        const aad = decodeAad(headers[AAD_HEADER]);
        const outcome = await startEncryptStream(deps.operations, callerOf(request, deps), { body: input, keyId: headers[KEY_ID_HEADER], context, aad, declaredBytes, maxBytes });
        const session = recordStream(request, outcome);
        return transport.send(request, reply, session, transport.spooledOutput(request, session.output));
      },
    );

    streams.post(
      '/decrypt/stream',
      {
        // Its turn is taken once the header and the first segment are in (the operation's beforeWork).
        config: { eventName: 'DecryptStream', takesOwnTurn: true },
        schema: {
          operationId: 'decryptStream',
          tags: ['envelope'],
          summary: 'Decrypt a stream ciphertext',
          description:
            'The body is a stream ciphertext from /v1/encrypt/stream (Content-Length or chunked, up to STREAM_MAX_BYTES); the answer ' +
            'is the plaintext, segment by segment, each released only after its tag verified. The header and the first segment ' +
            'are checked before the 200, so a wrong key, context or aad is a clean 4xx. Same policy (judged on the ciphertext\'s ' +
            'Content-Length, or on STREAM_MAX_BYTES without one) and cache as /v1/decrypt/binary. ' +
            MID_STREAM,
          security: SECURITY,
          headers: DecryptHeaders,
          body: octetBody('The stream ciphertext.'),
          bodyExamples: {
            text: {
              summary: 'A stream ciphertext in its ev2: text form (here "hello world")',
              description:
                'The body is what /v1/encrypt/stream answered, as is (`curl -X POST -T backup.es2 -H "content-type: ' +
                'application/octet-stream" ...`), or its text form, `ev2:` + base64url of those bytes, as here. ' +
                PASTE_STREAM_HINT,
              value: EXAMPLE_STREAM_CIPHERTEXT,
            },
          },
          response: {
            200: octetResponse('The plaintext bytes.', {
              ...KEY_ID_RESPONSE_HEADER,
              [CONTEXT_HEADER]: { type: 'string', description: 'The encryption context stored in the stream header, form-encoded.' },
            }),
            ...COMMON_ERRORS,
            ...STREAM_ERRORS,
            ...KEY_ERRORS,
            ...OPEN_ERRORS,
          },
        },
      },
      async (request: FastifyRequest, reply: FastifyReply) => {
        const headers = request.headers as Record<string, string | undefined>;
        const input = transport.body(request);
        const refusedFacts = (bytes: number | undefined): AuditFacts => ({ requestParameters: { ciphertextBytes: bytes }, kmsRequestIds: [] });
        const declaredBytes = declaredLength(request, maxBytes, refusedFacts);
        let expectedContext: Readonly<Record<string, string>> | undefined;
        let aad: Buffer | undefined;
        try {
          const contextHeader = parseContextHeader(headers[CONTEXT_HEADER]);
          expectedContext = contextHeader === undefined ? undefined : validContext(contextHeader);
          aad = decodeAad(headers[AAD_HEADER]);
        } catch (error) {
          return recordOutcome<never>(request, { ok: false, error, facts: refusedFacts(declaredBytes) });
        }
        const outcome = await startDecryptStream(deps.operations, callerOf(request, deps), {
          body: transport.spooledInput(request, input),
          expectedContext,
          aad,
          declaredBytes,
          maxBytes,
          beforeWork: () => deps.turns.take(request),
        });
        if (!outcome.ok) outcome.error = transport.problemBeforeAnswer(outcome.error, request);
        const session = recordStream(request, outcome);
        return transport.send(request, reply, session, session.output).header(CONTEXT_HEADER, contextHeaderOf(session.context));
      },
    );
  });
}

/** Content-Length when given (413 above STREAM_MAX_BYTES, before any work); undefined when chunked. */
function declaredLength(request: FastifyRequest, maxBytes: number, facts: (bytes: number) => AuditFacts): number | undefined {
  const header = request.headers['content-length'];
  if (header === undefined || request.headers['transfer-encoding'] !== undefined) return undefined;
  const bytes = Number(header);
  if (bytes > maxBytes) {
    recordOutcome<never>(request, { ok: false, error: new ProblemError(413, 'PayloadTooLarge', `the stream is larger than STREAM_MAX_BYTES (${maxBytes} bytes)`), facts: facts(bytes) });
  }
  return bytes;
}

function decodeAad(value: string | undefined): Buffer | undefined {
  return value === undefined ? undefined : Buffer.from(value, 'base64');
}
