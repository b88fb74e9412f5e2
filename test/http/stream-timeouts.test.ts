/**
 * The streaming routes' time and turn rules: a stream that keeps moving outlives
 * REQUEST_TIMEOUT_MS; one that stops moving for STREAM_IDLE_TIMEOUT_MS is cut and audited as a
 * timeout (408 before its answer started); stream outcomes are counted in
 * stream_outcomes_total; a rewritten segment size is refused before anything is buffered; a
 * decrypt stream waiting for its header does not hold its principal's request turn.
 *
 * node:http throughout: the tests need to pace uploads and see how responses end.
 */
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTH, buildTestApp, type TestApp } from '../helpers/app.js';
import { referenceDecrypt, referenceKeyBlock } from '../fixtures/vectors/stream-reference.js';

const OCTET = 'application/octet-stream';
const S = 64 * 1024;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const waitFor = async (check: () => boolean, ms = 5000) => {
  const until = Date.now() + ms;
  while (!check() && Date.now() < until) await sleep(20);
  return check();
};

interface Open {
  req: ClientRequest;
  response: Promise<IncomingMessage>;
  /** The response body so far, and whether it ended cleanly (once it closed). */
  received: Buffer[];
  closed: Promise<{ complete: boolean }>;
}

/** Opens a stream request (chunked) and reads its answer as it comes. */
function open(t: TestApp, path: string, headers: Record<string, string> = {}): Open {
  const { port } = t.app.server.address() as AddressInfo;
  const req = httpRequest({ host: '127.0.0.1', port, path, method: 'POST', headers: { ...AUTH, 'content-type': OCTET, ...headers } });
  const received: Buffer[] = [];
  let settle!: (value: { complete: boolean }) => void;
  const closed = new Promise<{ complete: boolean }>((resolve) => (settle = resolve));
  req.on('error', () => settle({ complete: false }));
  const response = new Promise<IncomingMessage>((resolve) =>
    req.on('response', (res) => {
      res.on('data', (chunk: Buffer) => received.push(chunk));
      res.on('error', () => undefined);
      res.on('close', () => settle({ complete: res.complete }));
      resolve(res);
    }),
  );
  req.flushHeaders();
  return { req, response, received, closed };
}

async function outcomes(t: TestApp): Promise<Record<string, number>> {
  const metric = t.metrics.registry.getSingleMetric('stream_outcomes_total');
  const values = metric ? (await metric.get()).values : [];
  return Object.fromEntries(values.map((v) => [`${String(v.labels.route)} ${String(v.labels.outcome)}`, v.value]));
}

async function referenceOpen(t: TestApp, sealed: Buffer): Promise<ReturnType<typeof referenceDecrypt>> {
  const { keyArn, wrappedKey, context } = referenceKeyBlock(sealed);
  const key = await t.provider.decryptDataKey(wrappedKey, keyArn, context);
  return referenceDecrypt(sealed, key.plaintextKey, Buffer.alloc(0));
}

describe('stream timeouts (REQUEST_TIMEOUT_MS 1 s, STREAM_IDLE_TIMEOUT_MS 1.5 s)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ env: { REQUEST_TIMEOUT_MS: '1000', HEADERS_TIMEOUT_MS: '1000', STREAM_IDLE_TIMEOUT_MS: '1500' } });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => t?.close());
  const eventsOf = (requestId: string) => t.auditEvents().filter((e) => e.requestID === requestId);

  it('a stream that keeps moving runs past REQUEST_TIMEOUT_MS and completes', async () => {
    const stream = open(t, '/v1/encrypt/stream');
    const plaintext = randomBytes(32 * 16 * 1024);
    // 32 pieces, one every 100 ms: over 3 s, three times REQUEST_TIMEOUT_MS.
    for (let at = 0; at < plaintext.length; at += 16 * 1024) {
      stream.req.write(plaintext.subarray(at, at + 16 * 1024));
      await sleep(100);
    }
    stream.req.end();
    const res = await stream.response;
    expect(res.statusCode).toBe(200);
    expect(await stream.closed).toEqual({ complete: true });
    expect((await referenceOpen(t, Buffer.concat(stream.received))).plaintext.equals(plaintext)).toBe(true);
    expect((await outcomes(t))['/v1/encrypt/stream completed']).toBe(1);
  });

  it('a stream that stops moving is cut after STREAM_IDLE_TIMEOUT_MS and audited as a timeout', async () => {
    const stream = open(t, '/v1/encrypt/stream');
    stream.req.write(randomBytes(S + 100));
    const res = await stream.response;
    expect(res.statusCode).toBe(200);
    // Then nothing in either direction: the client holds its upload open and has read everything.
    expect(await stream.closed).toEqual({ complete: false });
    const requestId = res.headers['x-request-id'] as string;
    expect(await waitFor(() => eventsOf(requestId).length === 2)).toBe(true);
    expect(eventsOf(requestId)[1]).toMatchObject({ additionalEventData: { stream: { phase: 'ended', outcome: 'timeout', bytesIn: S + 100 } } });
    expect((await outcomes(t))['/v1/encrypt/stream timeout']).toBe(1);
    stream.req.destroy();
  });

  it('a decrypt stream whose header never comes gets 408 StreamIdleTimeout, audited', async () => {
    const stream = open(t, '/v1/decrypt/stream');
    stream.req.write(Buffer.from([2, 2, 0]));
    const res = await stream.response;
    expect(res.statusCode).toBe(408);
    await stream.closed;
    expect(JSON.parse(Buffer.concat(stream.received).toString())).toMatchObject({ code: 'StreamIdleTimeout' });
    const requestId = res.headers['x-request-id'] as string;
    expect(await waitFor(() => eventsOf(requestId).length === 1)).toBe(true);
    expect(eventsOf(requestId)[0]).toMatchObject({ eventName: 'DecryptStream', httpStatus: 408, errorCode: 'StreamIdleTimeout' });
    stream.req.destroy();
  });
});

describe('stream outcomes and limits (default timeouts, REQUEST_CONCURRENCY_PER_PRINCIPAL 1)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ env: { REQUEST_CONCURRENCY_PER_PRINCIPAL: '1' } });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => t?.close());

  const encrypt = async (plaintext: Buffer) => {
    const response = await request(t.app.server).post('/v1/encrypt/stream').set(AUTH).set('content-type', OCTET).buffer(true).parse(binaryParser).send(plaintext);
    return response.body as Buffer;
  };

  it('counts completed and authentication-failed streams by route', async () => {
    const sealed = await encrypt(randomBytes(4 * S));
    const ok = await request(t.app.server).post('/v1/decrypt/stream').set(AUTH).set('content-type', OCTET).buffer(true).parse(binaryParser).send(sealed);
    expect(ok.status).toBe(200);
    const tampered = Buffer.from(sealed);
    tampered[sealed.length - 10]! ^= 1;
    const { port } = t.app.server.address() as AddressInfo;
    await new Promise<void>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/v1/decrypt/stream', method: 'POST', headers: { ...AUTH, 'content-type': OCTET } });
      req.on('error', () => resolve());
      req.on('response', (res) => {
        res.resume();
        res.on('error', () => resolve());
        res.on('close', () => resolve());
      });
      req.end(tampered);
    });
    expect(await waitFor(() => t.auditEvents().some((e) => (e.additionalEventData as { stream?: { outcome?: string } }).stream?.outcome === 'authentication-failed'))).toBe(true);
    expect(await outcomes(t)).toMatchObject({ '/v1/encrypt/stream completed': 1, '/v1/decrypt/stream completed': 1, '/v1/decrypt/stream authentication-failed': 1 });
  });

  it('a rewritten segment size (not covered by the key commitment) is refused at the header, before a segment is buffered', async () => {
    const sealed = await encrypt(randomBytes(3 * S));
    const { headerLength } = await referenceOpen(t, sealed);
    const rewritten = Buffer.from(sealed);
    rewritten.writeUInt32BE(16 * 1024 * 1024, headerLength - 4);
    const stream = open(t, '/v1/decrypt/stream');
    try {
      // The whole stream, but the upload stays open: a 16 MiB first segment could still be coming.
      stream.req.write(rewritten);
      const res = await Promise.race([stream.response, sleep(10_000).then(() => undefined)]);
      expect(res?.statusCode).toBe(422);
      await stream.closed;
      expect(JSON.parse(Buffer.concat(stream.received).toString())).toMatchObject({ code: 'MalformedCiphertext' });
    } finally {
      stream.req.destroy();
    }
  });

  it('a decrypt stream waiting for its header does not hold its turn: the principal\'s next request is served', async () => {
    const stream = open(t, '/v1/decrypt/stream');
    stream.req.write(Buffer.from([2, 2]));
    await sleep(200);
    const started = Date.now();
    const next = await request(t.app.server).post('/v1/encrypt').set(AUTH).send({ plaintext: 'aGk=' }).timeout(10_000).catch((error: Error) => error);
    expect((next as { status?: number }).status).toBe(200);
    expect(Date.now() - started).toBeLessThan(5_000);
    stream.req.destroy();
  });
});

const binaryParser = ((res: NodeJS.ReadableStream, callback: (error: Error | null, body: Buffer) => void): void => {
  const chunks: Buffer[] = [];
  res.on('data', (chunk: Buffer) => chunks.push(chunk));
  res.on('end', () => callback(null, Buffer.concat(chunks)));
}) as never;
