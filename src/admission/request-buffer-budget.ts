/**
 * Request bodies as a memory budget. Every byte of a body that Fastify buffers (the JSON and
 * /binary routes; the /stream routes never buffer theirs) is counted as it arrives, against the
 * principal's share (REQUEST_BUFFER_MAX_BYTES_PER_PRINCIPAL) and the process's whole budget
 * (REQUEST_BUFFER_MAX_BYTES), and given back when the response closes. The chunk that would go
 * over is refused before it is buffered: 429 (TooMuchBuffered for the principal's share,
 * BufferFull for the process's) + Retry-After and Connection: close, even if the upload would
 * never finish. A declared Content-Length larger than a whole share is a 413 before any byte.
 *
 * So one principal with many slow uploads holds at most its share, and all principals together
 * at most the budget, whatever the in-flight cap allows.
 *
 * A body with a Content-Length is charged whole when its headers arrive: Node's parser frames
 * the body by that length, so it is exactly what will be buffered, and a refusal comes before
 * any byte is read. Only a chunked body (no length) is counted chunk by chunk, through a
 * Transform: a stream per request that a declared body does not need to pay for.
 */
import { Transform, type Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { principalKey } from '../authz/principal-key.js';
import { ProblemError } from '../operations/errors.js';
import type { RefusalSummaries } from './refusal-summaries.js';

export interface BufferBudgetLimits {
  total: number;
  perPrincipal: number;
}

/** A refusal Fastify's body reader passes on as is (it keeps a statusCode ≥ 400). */
class BufferRefusal extends ProblemError {
  readonly statusCode: number;
  constructor(status: number, code: string, detail: string, retryAfterSeconds?: number) {
    super(status, code, detail, retryAfterSeconds);
    this.statusCode = status;
  }
}

export class RequestBufferBudget {
  #total = 0;
  readonly #byPrincipal = new Map<string, number>();

  constructor(readonly limits: BufferBudgetLimits) {}

  /** Bytes held now, all principals together (a gauge). */
  get bufferedBytes(): number {
    return this.#total;
  }

  /** Takes `bytes` for `key`, or says which budget they would exceed (and takes nothing). */
  take(key: string, bytes: number): 'principal' | 'process' | undefined {
    const held = this.#byPrincipal.get(key) ?? 0;
    if (held + bytes > this.limits.perPrincipal) return 'principal';
    if (this.#total + bytes > this.limits.total) return 'process';
    this.#byPrincipal.set(key, held + bytes);
    this.#total += bytes;
    return undefined;
  }

  give(key: string, bytes: number): void {
    if (bytes === 0) return;
    const left = (this.#byPrincipal.get(key) ?? 0) - bytes;
    if (left > 0) this.#byPrincipal.set(key, left);
    else this.#byPrincipal.delete(key);
    this.#total -= bytes;
  }

  /** Counts the bodies of every route of `scope` (a scope whose routes buffer their bodies). */
  register(scope: FastifyInstance, refusals: RefusalSummaries): void {
    scope.addHook('preParsing', (request, reply, payload, done) => {
      let counted: Readable;
      try {
        counted = this.counted(request, reply, payload, refusals);
      } catch (error) {
        return done(error as Error);
      }
      done(null, counted);
    });
  }

  private counted(request: FastifyRequest, reply: FastifyReply, payload: Readable, refusals: RefusalSummaries): Readable {
    const principal = request.principal;
    // GET and HEAD carry no body here; nothing to count.
    if (!principal || request.method === 'GET' || request.method === 'HEAD') return payload;
    const declared = Number(request.headers['content-length']);
    if (declared > this.limits.perPrincipal) {
      throw new ProblemError(413, 'PayloadTooLarge', 'the request body is larger than a principal may have buffered (REQUEST_BUFFER_MAX_BYTES_PER_PRINCIPAL)');
    }
    const key = principalKey(principal);
    let held = 0;
    const release = (): void => {
      this.give(key, held);
      held = 0;
    };
    const refuse = (over: 'principal' | 'process'): BufferRefusal => {
      const refusal =
        over === 'principal'
          ? new BufferRefusal(429, 'TooMuchBuffered', "this principal's request bodies being received exceed its share (REQUEST_BUFFER_MAX_BYTES_PER_PRINCIPAL)", 1)
          : new BufferRefusal(429, 'BufferFull', 'the request bodies being received exceed the service budget (REQUEST_BUFFER_MAX_BYTES)', 1);
      refusals.note(request, refusal.code);
      // The rest of the body is not read: the connection goes once the answer is sent.
      reply.header('connection', 'close');
      return refusal;
    };
    if (Number.isSafeInteger(declared) && declared >= 0 && request.headers['transfer-encoding'] === undefined) {
      // Over the route's body limit, Fastify answers 413 before reading a byte: charging it
      // meanwhile could only refuse the principal's other requests.
      if (declared > request.routeOptions.bodyLimit) return payload;
      const over = this.take(key, declared);
      if (over !== undefined) throw refuse(over);
      held = declared;
      reply.raw.once('close', release);
      return payload;
    }
    reply.raw.once('close', release);
    const counter = new Transform({
      transform: (chunk: Buffer, _encoding, next) => {
        const over = this.take(key, chunk.length);
        if (over === undefined) {
          held += chunk.length;
          next(null, chunk);
          return;
        }
        // What was buffered is dropped with the request's body reader: give it back now.
        release();
        payload.unpipe(counter);
        next(refuse(over));
      },
    });
    payload.once('error', (error) => counter.destroy(error));
    payload.pipe(counter);
    return counter;
  }
}
