/**
 * The stream routes over node:http(s), full duplex: the body is sent while the answer is read,
 * so memory stays at a few segments on both sides and the service never spools (README,
 * "Streams"). The returned Readable is the answer's body; it ERRORS, never ends, when:
 *
 * - the service answers anything but 200 (an EnvelopeProblem, the request's upload stopped);
 * - the service cuts the stream after its 200 (the socket closes without the final chunk: a
 *   later segment failed, a limit or the idle timeout, the audit log): a StreamCutError;
 * - the body being sent fails, the caller aborts, or nothing moves for `timeoutMs`.
 *
 * Never retried: the body is a Readable already (partly) consumed.
 */
import http from 'node:http';
import https from 'node:https';
import { PassThrough, pipeline, type Readable } from 'node:stream';
import { EnvelopeProblem, StreamCutError, parseRetryAfter } from './errors.js';
import { baseHeaders, type ResolvedOptions } from './options.js';
import { ClientTimeoutError } from './transport.js';

export interface StreamResponseHead {
  status: number;
  headers: http.IncomingHttpHeaders;
}

/** The answer's body; `head` resolves once the 200's headers are in (rejects with the failure otherwise). */
export interface StreamResponse extends Readable {
  readonly head: Promise<StreamResponseHead>;
}

/** Problem bodies are small; more than this is not a problem document. */
const MAX_PROBLEM_BYTES = 64 * 1024;

export function postStream(
  options: ResolvedOptions,
  path: '/v1/encrypt/stream' | '/v1/decrypt/stream',
  headers: Record<string, string>,
  body: Readable,
  signal?: AbortSignal,
): StreamResponse {
  const operation = `POST ${path}`;
  const url = new URL(path, options.baseUrl);
  const out = new PassThrough() as PassThrough & { head: Promise<StreamResponseHead> };
  let settleHead!: { resolve: (head: StreamResponseHead) => void; reject: (error: unknown) => void };
  out.head = new Promise<StreamResponseHead>((resolve, reject) => (settleHead = { resolve, reject }));
  out.head.catch(() => undefined);
  let failed = false;
  /** Once the service answered an error, the upload's own failure (EPIPE, reset) is its echo. */
  let refused = false;
  const fail = (error: unknown): void => {
    if (failed) return;
    failed = true;
    settleHead.reject(error);
    request.destroy();
    body.destroy();
    out.destroy(error as Error);
  };

  const agent = url.protocol === 'https:' ? https : http;
  const request = agent.request(url, {
    method: 'POST',
    headers: { ...baseHeaders(options), 'content-type': 'application/octet-stream', ...headers },
  });
  request.setTimeout(options.timeoutMs, () => fail(new ClientTimeoutError(`${operation}: nothing moved for ${options.timeoutMs} ms`)));
  let received = 0;
  request.on('error', (error) => {
    if (refused) return;
    // A reset once connected is how the service ends a failed stream, even while we still
    // upload (the reset can overtake its 200): a cut, not a network fault.
    const code = (error as NodeJS.ErrnoException).code;
    fail(code === 'ECONNRESET' || code === 'EPIPE' ? new StreamCutError(operation, received, { cause: error }) : error);
  });
  if (signal) {
    if (signal.aborted) queueMicrotask(() => fail(signal.reason));
    else signal.addEventListener('abort', () => fail(signal.reason), { once: true });
  }
  // Our own copy is told apart from the service's cut: the body's own failure is reported as is.
  pipeline(body, request, (error) => {
    if (error && !refused) fail(body.errored ?? error);
  });

  request.on('response', (response) => {
    if (response.statusCode !== 200) {
      refused = true;
      readProblem(response).then(
        (problem) =>
          fail(new EnvelopeProblem(operation, response.statusCode ?? 0, problem, parseRetryAfter(header(response.headers['retry-after'])), header(response.headers['x-request-id']))),
        (error: unknown) => fail(error),
      );
      return;
    }
    settleHead.resolve({ status: 200, headers: response.headers });
    response.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (!out.write(chunk)) response.pause();
    });
    out.on('drain', () => response.resume());
    // A cut arrives as 'aborted' and/or 'error' (ECONNRESET), or as an 'end' that is not complete.
    response.on('aborted', () => fail(new StreamCutError(operation, received)));
    response.on('error', (error) => fail(new StreamCutError(operation, received, { cause: error })));
    response.on('end', () => {
      if (!response.complete) return fail(new StreamCutError(operation, received));
      out.end();
    });
  });
  // The reader gave up: stop sending and receiving.
  out.on('close', () => {
    if (!out.writableFinished) fail(out.errored ?? new Error(`${operation}: the reader closed the stream`));
  });
  return out;
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

async function readProblem(response: http.IncomingMessage): Promise<Record<string, unknown> | undefined> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of response as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > MAX_PROBLEM_BYTES) break;
    chunks.push(chunk);
  }
  try {
    const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    return parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
