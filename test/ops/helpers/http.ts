/**
 * Plain node:http requests for process tests: by default one connection per request (no agent,
 * no keep-alive), so a request refused because the server has closed is a connection error,
 * never a reused socket, and the outcome of each request is unambiguous. A test of keep-alive
 * itself passes its own `agent`.
 */
import { request as httpRequest, type Agent, type ClientRequest, type IncomingHttpHeaders } from 'node:http';

export interface HttpResult {
  kind: 'response';
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}
export interface HttpFailure {
  kind: 'error';
  code: string;
  message: string;
}
export type HttpOutcome = HttpResult | HttpFailure;

export interface SendOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  timeoutMs?: number;
  /** A keep-alive agent: the request may reuse, and leaves open, one of its connections. */
  agent?: Agent;
}

/**
 * send(), retried as a client must when the service sheds load: a `503 Overloaded` carries
 * Retry-After, and a freshly started process on a busy machine (CI runs suites side by side)
 * can measure event-loop lag above MAX_EVENT_LOOP_DELAY_MS for its first seconds. Any other
 * answer is returned at once; after `withinMs` the last answer is returned as it is.
 */
export async function sendRetryingOverload(url: string, options: SendOptions = {}, withinMs = 20_000): Promise<HttpOutcome> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const outcome = await send(url, options);
    const overloaded = outcome.kind === 'response' && outcome.status === 503 && outcome.body.includes('"Overloaded"');
    if (!overloaded || Date.now() >= deadline) return outcome;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** Sends a request; resolves with the response or the connection error (never rejects). */
export function send(url: string, options: SendOptions = {}): Promise<HttpOutcome> {
  return started(url, options).finish();
}

export interface StartedRequest {
  request: ClientRequest;
  /** Sends the rest of the body (if held back) and waits for the outcome. */
  finish(rest?: string): Promise<HttpOutcome>;
  outcome: Promise<HttpOutcome>;
}

/**
 * Starts a request. With `hold`, only the first `hold` bytes of the body are sent: the server
 * has the request (headers, part of the body) in flight until finish() sends the rest.
 */
export function started(url: string, options: SendOptions & { hold?: number } = {}): StartedRequest {
  const body = options.body ?? '';
  const request = httpRequest(url, {
    method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
    agent: options.agent ?? false,
    headers: {
      ...(options.agent ? {} : { connection: 'close' }),
      ...(options.body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }),
      ...options.headers,
    },
    timeout: options.timeoutMs ?? 20_000,
  });
  const outcome = new Promise<HttpOutcome>((done) => {
    request.on('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        done({ kind: 'response', status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }),
      );
      response.on('error', (error: NodeJS.ErrnoException) => done({ kind: 'error', code: error.code ?? 'ERR', message: error.message }));
    });
    request.on('timeout', () => request.destroy(Object.assign(new Error('client timeout'), { code: 'CLIENT_TIMEOUT' })));
    request.on('error', (error: NodeJS.ErrnoException) => done({ kind: 'error', code: error.code ?? 'ERR', message: error.message }));
  });
  const held = options.hold !== undefined ? Buffer.from(body).subarray(0, options.hold) : undefined;
  if (held) request.write(held);
  return {
    request,
    outcome,
    finish(rest?: string) {
      if (held) request.end(rest ?? Buffer.from(body).subarray(held.length));
      else request.end(body === '' ? undefined : body);
      return outcome;
    },
  };
}

export function json<T = Record<string, unknown>>(result: HttpOutcome): T {
  if (result.kind !== 'response') throw new Error(`no response: ${result.code} ${result.message}`);
  return JSON.parse(result.body) as T;
}
