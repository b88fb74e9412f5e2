/**
 * The streaming routes' transport: how a stream's bytes travel between the socket and the
 * session, apart from what the route decodes. It gives the routes' scope its body parser (the
 * request stream itself, unread), the idle timeout in place of REQUEST_TIMEOUT_MS
 * (stream-idle.ts), and the spool on the ciphertext side (stream-spool.ts).
 */
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { principalKey } from '../../authz/principal-key.js';
import type { Config } from '../../config.js';
import type { ServiceMetrics } from '../../metrics/metrics.js';
import type { StreamSession } from '../../operations/stream.js';
import { failStream, watchStream } from '../audit-trail.js';
import { KEY_ID_HEADER, headerSafe } from '../schemas/binary-headers.js';
import { OCTET_STREAM } from '../schemas/octet-stream-schemas.js';
import { ProblemError } from '../problem.js';
import { ClientGoneError, StreamIdleTimeoutError } from './stream-audit.js';
import { exemptStreamsFromRequestTimeout, watchIdle } from './stream-idle.js';
import { STALL_MS, SpoolQuotaError, StreamSpool } from './stream-spool.js';

export class StreamTransport {
  private readonly spool: StreamSpool;
  /** A stream's input before its answer started: what an idle timeout stops then. */
  private readonly pendingInputs = new WeakMap<FastifyRequest, Readable>();

  constructor(config: Config, metrics: ServiceMetrics | undefined) {
    this.spool = new StreamSpool(
      {
        dir: config.STREAM_SPOOL_DIR,
        maxBytes: config.STREAM_SPOOL_MAX_BYTES,
        maxBytesPerPrincipal: config.STREAM_SPOOL_MAX_BYTES_PER_PRINCIPAL,
        // A client pushed back on moves no byte: the wait must stay well inside the idle timeout.
        stallMs: Math.min(STALL_MS, config.STREAM_IDLE_TIMEOUT_MS / 4),
      },
      { spooled: (bytes) => metrics?.streamSpooledBytes.inc(bytes) },
    );
    if (metrics) metrics.streamSpoolBytesNow = () => this.spool.bytesNow;
    this.idleMs = config.STREAM_IDLE_TIMEOUT_MS;
  }

  private readonly idleMs: number;

  /** The streaming routes' scope: body parser, idle timeout, connection handling. */
  register(streams: FastifyInstance): void {
    streams.addHook('onClose', async () => this.spool.close());
    exemptStreamsFromRequestTimeout(streams.server);
    streams.removeAllContentTypeParsers();
    // The request stream itself, unread: the body limits do not apply, STREAM_MAX_BYTES does.
    streams.addContentTypeParser(OCTET_STREAM, (_request, payload, done) => done(null, payload));
    // A stream refused before its body was read: the connection cannot carry another request.
    streams.addHook('onError', async (request, reply) => {
      if (!request.raw.complete) reply.header('connection', 'close');
    });
    streams.addHook('onRequest', async (request, reply) => {
      watchIdle(request, reply, this.idleMs, () => {
        const idle = new StreamIdleTimeoutError(`no byte of the stream moved for ${this.idleMs} ms (STREAM_IDLE_TIMEOUT_MS)`);
        if (failStream(request, idle)) return;
        const input = this.pendingInputs.get(request);
        if (input) input.destroy(idle);
        else request.raw.destroy(idle);
      });
    });
  }

  /** The request body as a stream (400 without one). */
  body(request: FastifyRequest): Readable {
    const body = request.body as Readable | undefined;
    if (!body || typeof body.pipe !== 'function') {
      throw new ProblemError(400, 'InvalidRequest', 'the request has no body: send the bytes as application/octet-stream (an empty body is fine)');
    }
    this.pendingInputs.set(request, body);
    return body;
  }

  /** Decrypt: the request's ciphertext through the spool, so the session can wait (for its key, or for the client to read). */
  spooledInput(request: FastifyRequest, body: Readable): Readable {
    const spooled = this.bufferFor(request);
    feed(body, spooled);
    this.pendingInputs.set(request, spooled);
    return spooled;
  }

  /** Encrypt: the session's ciphertext through the spool, so the upload goes on while the client does not read yet. */
  spooledOutput(request: FastifyRequest, output: Readable): Readable {
    const spooled = this.bufferFor(request);
    pipeline(output, spooled).catch(() => undefined);
    return spooled;
  }

  /** Sends the stream; the audit trail watches how it ends. */
  send(request: FastifyRequest, reply: FastifyReply, session: StreamSession, body: Readable): FastifyReply {
    this.pendingInputs.delete(request);
    watchStream(request, reply, body);
    return reply.type(OCTET_STREAM).header(KEY_ID_HEADER, headerSafe(session.keyArn)).send(body);
  }

  /** An error of the transport while reading the body before the 200, as the caller's problem. */
  problemBeforeAnswer(error: unknown, request: FastifyRequest): unknown {
    this.pendingInputs.get(request)?.destroy();
    if (error instanceof StreamIdleTimeoutError) return new ProblemError(408, 'StreamIdleTimeout', error.message);
    if (error instanceof SpoolQuotaError) return new ProblemError(503, 'StreamSpoolFull', error.message, 1);
    if (error instanceof ProblemError || (error instanceof Error && (error.name === 'EnvelopeError' || error.name === 'AccessDeniedError'))) return error;
    if (error instanceof ClientGoneError || request.raw.destroyed || request.raw.readableAborted) return new ProblemError(400, 'InvalidRequest', 'the request body ended early');
    return error;
  }

  private bufferFor(request: FastifyRequest) {
    return this.spool.buffer(request.principal ? principalKey(request.principal) : 'anonymous');
  }
}

/** Pipes the request into the spool without tying their ends: stopping the spool (a timeout) leaves the request to be answered. */
function feed(input: Readable, into: Writable): void {
  input.pipe(into);
  const cut = (error?: Error): void => {
    if (!input.readableEnded) into.destroy(error ?? new ClientGoneError('the request body ended early'));
  };
  input.once('error', cut);
  input.once('close', () => cut());
}
