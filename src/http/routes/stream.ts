/**
 * POST /v1/encrypt/stream and POST /v1/decrypt/stream: payloads of any size as streams
 * (docs/FORMAT.md, "Stream format"), with the binary routes' headers, policy, cache and limits
 * and STREAM_MAX_BYTES instead of the body limits.
 *
 * The body is never read by Fastify: the content-type parser of this scope hands the request
 * stream through, and it is piped through the sealer or opener to the response, so memory is a
 * few segments whatever the size and a slow side on either end slows the other.
 *
 * Audit (docs/AUDIT.md): the request's event (`stream.phase: started`) is written in onSend
 * like every other, before a byte leaves; a second event with the same requestID
 * (`stream.phase: ended`) records how the stream ended. On success it is written before the
 * last segment is released, so a clean end always has its record; if it cannot be written, the
 * response ends abnormally. After the 200, any failure destroys the socket: the client sees an
 * incomplete chunked response, never a clean end (README, "Streams").
 */
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { StreamAuditDetails } from '../../audit/event.js';
import { sortedContextEntries } from '../../envelope/context.js';
import { SegmentAuthenticationError, StreamOpener, StreamSealer, StreamTooLargeError, type StreamProgress } from '../../envelope/stream-crypto.js';
import { TextFormDecoder } from '../../envelope/stream-text-form.js';
import { validContext } from '../../operations/context.js';
import type { AuditFacts, Outcome } from '../../operations/operation.js';
import { startDecryptStream, startEncryptStream } from '../../operations/stream.js';
import { toAuditEvent } from '../audit-event.js';
import { recordOutcome } from '../audit-trail.js';
import {
  AAD_HEADER,
  CONTEXT_HEADER,
  KEY_ID_HEADER,
  formatContextHeader,
  headerSafe,
  parseContextHeader,
} from '../binary-headers.js';
import { ProblemError } from '../problem.js';
import { AadHeader, ContextHeader, OCTET_STREAM, octetBody, octetResponse } from '../octet-stream-schemas.js';
import { EXAMPLE_STREAM_CIPHERTEXT, KeyId, PASTE_STREAM_HINT } from '../schemas.js';
import { COMMON_ERRORS, KEY_ERRORS, OPEN_ERRORS, SECURITY, callerOf, type V1Deps } from './common.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The streaming route's response body and its audit bookkeeping. */
    streamRun: StreamRun | undefined;
  }
}

const EncryptHeaders = Type.Object({
  [KEY_ID_HEADER]: Type.Optional(KeyId),
  [CONTEXT_HEADER]: Type.Optional(ContextHeader('The KMS encryption context, form-encoded (`tenant=acme&purpose=backup`). Default: none.')),
  [AAD_HEADER]: Type.Optional(AadHeader('Associated data bound to every segment (base64). Required again to decrypt.')),
});

const DecryptHeaders = Type.Object({
  [CONTEXT_HEADER]: Type.Optional(ContextHeader('If given, must equal the context stored in the stream header (422 otherwise).')),
  [AAD_HEADER]: Type.Optional(AadHeader('The associated data given to encrypt (base64).')),
});

const KEY_ID_RESPONSE_HEADER = { [KEY_ID_HEADER]: { type: 'string', description: 'ARN of the KMS key that wraps the data key.' } };

const MID_STREAM =
  'Once the 200 is sent, a failure (a segment failing authentication, the stream exceeding STREAM_MAX_BYTES, the audit log failing) ' +
  'ends the response abnormally: the connection is closed without the chunked terminator. A client must treat a response that did ' +
  'not end cleanly as failed and discard what it received (curl exits with 18 or 56).';

export async function registerStream(scope: FastifyInstance, deps: V1Deps): Promise<void> {
  const maxBytes = deps.config.STREAM_MAX_BYTES;
  await scope.register(async (streams) => {
    streams.removeAllContentTypeParsers();
    // The request stream itself, unread: the body limits do not apply, STREAM_MAX_BYTES does.
    streams.addContentTypeParser(OCTET_STREAM, (_request, payload, done) => done(null, payload));
    streams.decorateRequest('streamRun', undefined);
    // Runs after the audit trail's onSend (a parent scope's hooks run first): the started event
    // is in the log. If the audit trail replaced the stream with its 503, the stream is dropped.
    streams.addHook('onSend', async (request, _reply, payload) => {
      const run = request.streamRun;
      if (run) {
        if (payload === run.body) run.markStarted();
        else run.abandon();
      }
      return payload;
    });

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
            ...KEY_ERRORS,
          },
        },
      },
      async (request: FastifyRequest, reply: FastifyReply) => {
        const headers = request.headers as Record<string, string | undefined>;
        const body = requestStream(request);
        const declaredBytes = declaredLength(request, maxBytes, (bytes) => ({ requestParameters: { plaintextBytes: bytes }, kmsRequestIds: [] }));
        const context = parseContextHeader(headers[CONTEXT_HEADER]);
        const aad = decodeAad(headers[AAD_HEADER]);
        const outcome = await startEncryptStream(deps.operations, callerOf(request, deps), { keyId: headers[KEY_ID_HEADER], context, aad, declaredBytes, maxBytes });
        const started = recordStarted(request, outcome);
        const run = new StreamRun(request, reply, deps, outcome.facts, 'encrypt');
        const sealer = new StreamSealer({
          header: started.header,
          authenticatedHeader: started.authenticatedHeader,
          streamKey: started.streamKey,
          segmentSize: started.segmentSize,
          aad,
          maxBytes,
          beforeEnd: (progress) => run.completed(progress),
        });
        run.attach(body, sealer);
        return reply.type(OCTET_STREAM).header(KEY_ID_HEADER, headerSafe(started.keyArn)).send(sealer);
      },
    );

    streams.post(
      '/decrypt/stream',
      {
        config: { eventName: 'DecryptStream' },
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
            ...KEY_ERRORS,
            ...OPEN_ERRORS,
          },
        },
      },
      async (request: FastifyRequest, reply: FastifyReply) => {
        const headers = request.headers as Record<string, string | undefined>;
        const body = requestStream(request);
        const refusedFacts = (bytes: number | undefined): AuditFacts => ({ requestParameters: { ciphertextBytes: bytes }, kmsRequestIds: [] });
        const declaredBytes = declaredLength(request, maxBytes, refusedFacts);
        const opener = new StreamOpener(maxBytes);
        // Either form of a stream ciphertext: the bytes, or `ev2:` text (what a form or the UI sends).
        const piped = pipeline(body, new TextFormDecoder(), opener);
        piped.catch(() => undefined); // observed through the opener's promises and the run
        try {
          const contextHeader = parseContextHeader(headers[CONTEXT_HEADER]);
          const expectedContext = contextHeader === undefined ? undefined : validContext(contextHeader);
          const aad = decodeAad(headers[AAD_HEADER]);
          const header = await opener.header().catch((error: unknown) => {
            throw bodyError(error, request);
          });
          const outcome = await startDecryptStream(deps.operations, callerOf(request, deps), { header, expectedContext, aad, declaredBytes, maxBytes });
          const key = recordStarted(request, outcome);
          const run = new StreamRun(request, reply, deps, outcome.facts, 'decrypt');
          opener.start({ streamKey: key.streamKey, aad, beforeEnd: (progress) => run.completed(progress) });
          // The first segment is checked before the 200: a wrong aad is still a clean 422.
          await opener.firstSegment().catch((error: unknown) => {
            throw bodyError(error, request);
          });
          run.attach(body, opener, piped);
          return reply
            .type(OCTET_STREAM)
            .header(KEY_ID_HEADER, headerSafe(key.keyArn))
            .header(CONTEXT_HEADER, formatContextHeader(sortedContextEntries(header.context)))
            .send(opener);
        } catch (error) {
          opener.destroy();
          if (request.audit && !request.audit.facts) request.audit.facts = refusedFacts(declaredBytes);
          if (request.audit?.facts) delete request.audit.facts.stream;
          throw error;
        }
      },
    );
  });
}

/** The facts of a refused request have no stream phase: it has one event, with its error. */
function recordStarted<R>(request: FastifyRequest, outcome: Outcome<R>): R {
  if (!outcome.ok) delete outcome.facts.stream;
  return recordOutcome(request, outcome);
}

/**
 * How one stream ends, recorded once: `completed` from the Transform's end (awaited, before the
 * last segment leaves); any other end from the stream's error or the client's disconnect.
 */
class StreamRun {
  body: Readable | undefined;
  private transform: StreamSealer | StreamOpener | undefined;
  private started = false;
  private ended = false;
  /** A failure before the started event was written: recorded right after it. */
  private earlyFailure: { error: unknown } | undefined;
  private resolveStarted!: () => void;
  private rejectStarted!: (error: Error) => void;
  private readonly startedWritten = new Promise<void>((resolve, reject) => {
    this.resolveStarted = resolve;
    this.rejectStarted = reject;
  });

  constructor(
    private readonly request: FastifyRequest,
    private readonly reply: FastifyReply,
    private readonly deps: V1Deps,
    private readonly facts: AuditFacts,
    private readonly direction: 'encrypt' | 'decrypt',
  ) {
    this.startedWritten.catch(() => undefined);
    request.streamRun = this;
  }

  attach(input: Readable, transform: StreamSealer | StreamOpener, piped?: Promise<void>): void {
    this.body = transform;
    this.transform = transform;
    (piped ?? pipeline(input, transform)).catch((error: unknown) => this.failed(error));
    transform.once('error', (error) => this.failed(error));
    // The client went away before the response finished: stop reading, stop working.
    this.reply.raw.once('close', () => {
      if (!this.reply.raw.writableFinished) {
        transform.destroy();
        input.destroy();
        this.failed(new ClientGoneError());
      }
    });
  }

  markStarted(): void {
    this.started = true;
    this.resolveStarted();
    if (this.earlyFailure) this.failed(this.earlyFailure.error);
  }

  /** The audit trail answered 503 instead: nothing was sent, nothing is read any further. */
  abandon(): void {
    this.ended = true;
    this.rejectStarted(new Error('the started event was not written'));
    this.transform?.destroy();
  }

  /** The last segment is ready: record the outcome, then let it go (a rejection ends the response abnormally). */
  async completed(progress: StreamProgress): Promise<void> {
    await this.startedWritten;
    if (this.ended) throw new Error('the stream has already ended');
    this.ended = true;
    await this.write({ phase: 'ended', outcome: 'completed', ...progress }, progress);
  }

  failed(error: unknown): void {
    if (this.ended) return;
    if (!this.started) {
      this.earlyFailure ??= { error };
      return;
    }
    this.ended = true;
    const progress = this.transform?.progress ?? { bytesIn: 0, bytesOut: 0, segments: 0 };
    const details: StreamAuditDetails = { phase: 'ended', outcome: outcomeOf(error, this.request), ...progress };
    if (error instanceof SegmentAuthenticationError) details.failedSegment = error.segment;
    this.write(details, progress).catch((writeError: unknown) => {
      this.request.log.error({ errorName: (writeError as Error).name }, 'audit event for the end of a stream could not be written');
    });
    // After the 200 the only honest signal left: no chunked terminator, the connection closed.
    this.reply.raw.destroy();
  }

  private async write(details: StreamAuditDetails, progress: StreamProgress): Promise<void> {
    const sizes =
      this.direction === 'encrypt'
        ? { requestParameters: { ...this.facts.requestParameters, plaintextBytes: progress.bytesIn }, responseElements: { ...this.facts.responseElements, ciphertextBytes: progress.bytesOut } }
        : { requestParameters: { ...this.facts.requestParameters, ciphertextBytes: progress.bytesIn }, responseElements: { ...this.facts.responseElements, plaintextBytes: progress.bytesOut } };
    const event = toAuditEvent(this.request, 200, { facts: { ...this.facts, ...sizes, stream: details } });
    await this.deps.audit.write(event);
  }
}

class ClientGoneError extends Error {
  override readonly name = 'ClientGoneError';
}

function outcomeOf(error: unknown, request: FastifyRequest): NonNullable<StreamAuditDetails['outcome']> {
  if (error instanceof SegmentAuthenticationError) return 'authentication-failed';
  if (error instanceof StreamTooLargeError) return 'too-large';
  if (error instanceof ClientGoneError || request.raw.destroyed || (error as NodeJS.ErrnoException)?.code === 'ECONNRESET') return 'aborted-by-client';
  return 'failed';
}

/** An error while reading the body before the 200, as a problem. */
function bodyError(error: unknown, request: FastifyRequest): unknown {
  if (error instanceof StreamTooLargeError) return new ProblemError(413, 'PayloadTooLarge', error.message);
  if (error instanceof SegmentAuthenticationError) return error;
  if (error instanceof Error && error.name === 'EnvelopeError') return error;
  if (request.raw.destroyed || request.raw.readableAborted) return new ProblemError(400, 'InvalidRequest', 'the request body ended early');
  return error;
}

function requestStream(request: FastifyRequest): Readable {
  const body = request.body as Readable | undefined;
  if (body && typeof body.pipe === 'function') return body;
  throw new ProblemError(400, 'InvalidRequest', 'the request has no body: send the bytes as application/octet-stream (an empty body is fine)');
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
