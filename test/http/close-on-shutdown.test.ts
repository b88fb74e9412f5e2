/**
 * Closing the app with keep-alive clients connected: a connection busy with a request when
 * close() starts ends with that request's response, so close() (and with it a SIGTERM's
 * shutdown, test/ops/shutdown.test.ts) waits for the work in flight, not for the 72 s
 * keepAliveTimeout of the idle connection each response would leave behind.
 */
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AUTH, buildTestApp, type TestApp } from '../helpers/app.js';
import { until, within } from '../helpers/polling.js';

/** Well under keepAliveTimeout (72 s): a close() still pending after this waits on an idle connection. */
const CLOSE_WITHIN_MS = 10_000;

let t: TestApp | undefined;
let agent: Agent | undefined;
afterEach(async () => {
  agent?.destroy();
  agent = undefined;
  await t?.close();
  t = undefined;
});

/** The app listening, and a keep-alive agent for startPost; returns the port. */
async function listening(): Promise<number> {
  t = await buildTestApp();
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  agent = new Agent({ keepAlive: true, maxSockets: 4 });
  return (t.app.server.address() as AddressInfo).port;
}

interface Answer {
  status: number;
  connection: string | undefined;
  body: Buffer;
}

/** Starts a POST on the keep-alive agent, sends `first`; `rest()` sends the remainder and reads the answer. */
function startPost(port: number, path: string, headers: Record<string, string>, first: Buffer, last: Buffer) {
  const req = httpRequest({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { ...AUTH, ...headers } });
  const response = new Promise<IncomingMessage>((resolve, reject) => req.once('response', resolve).once('error', reject));
  req.write(first);
  return {
    response,
    async rest(): Promise<Answer> {
      req.end(last);
      const res = await response;
      const chunks: Buffer[] = [];
      for await (const chunk of res) chunks.push(chunk as Buffer);
      return { status: res.statusCode ?? 0, connection: res.headers.connection, body: Buffer.concat(chunks) };
    },
  };
}

describe('close() with keep-alive connections', () => {
  it('answers a request in flight with Connection: close, and resolves once it is answered', async () => {
    const port = await listening();
    const body = Buffer.from(JSON.stringify({ plaintext: Buffer.from('in flight').toString('base64'), context: { purpose: 'close' } }));
    // A connection left idle by an answered request, and one busy with a half-sent body.
    const warm = startPost(port, '/v1/encrypt', { 'content-type': 'application/json' }, body, Buffer.alloc(0));
    expect((await warm.rest()).status).toBe(200);
    const inFlight = startPost(port, '/v1/encrypt', { 'content-type': 'application/json', 'content-length': String(body.length) }, body.subarray(0, 10), body.subarray(10));
    // In the service: its declared body is charged to the request-buffer budget.
    await until(async () => new RegExp(`request_buffer_bytes ${body.length}\\b`).test(await t!.metrics.registry.getSingleMetricAsString('request_buffer_bytes')));

    const closing = t!.app.close();
    const answer = await inFlight.rest();
    expect(answer.status).toBe(200);
    expect(answer.connection).toBe('close');
    expect(await within(closing, CLOSE_WITHIN_MS)).not.toBe('waiting');
  });

  it('closes a stream\'s connection once the stream, answered before close() began, has ended', async () => {
    const port = await listening();
    const stream = startPost(port, '/v1/encrypt/stream', { 'content-type': 'application/octet-stream', 'x-envelope-context': 'purpose=close' }, Buffer.alloc(64 * 1024, 1), Buffer.alloc(1024, 2));
    // The response has started (its headers went out with keep-alive) before close().
    expect((await stream.response).statusCode).toBe(200);

    const closing = t!.app.close();
    const answer = await stream.rest();
    expect(answer.status).toBe(200);
    expect(answer.connection).toBe('keep-alive');
    expect(answer.body.length).toBeGreaterThan(65 * 1024);
    expect(await within(closing, CLOSE_WITHIN_MS)).not.toBe('waiting');
  });
});
