/**
 * Request bodies are a memory budget (REQUEST_BUFFER_MAX_BYTES_PER_PRINCIPAL,
 * REQUEST_BUFFER_MAX_BYTES): a declared body is charged whole when its headers arrive, a chunked
 * one as its bytes arrive, and once a principal's share or
 * the process's whole budget is used, the request whose next chunk would go over is refused with
 * 429 at once, even if its upload never finishes. Refusals are audited: the first of each kind
 * per principal and window as its own event, the rest in one RefusalsSummarized event.
 *
 * A principal no policy rule could allow the route's operation is refused with 403 before any
 * of its body is read.
 */
import { request as httpRequest, type ClientRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.js';

const POLICY = new URL('../fixtures/policy/neighbours.yaml', import.meta.url).pathname;
const KiB = 1024;
const MiB = 1024 * KiB;

let t: TestApp | undefined;
/** Every client request of a test, destroyed before the app closes (close waits for open requests). */
const opened: ClientRequest[] = [];
afterEach(async () => {
  for (const request of opened.splice(0)) request.destroy();
  await t?.close();
  t = undefined;
});

async function start(env: Record<string, string> = {}): Promise<string> {
  t = await buildTestApp({
    policyFile: POLICY,
    env: { BODY_LIMIT_BYTES: String(MiB), REQUEST_BUFFER_MAX_BYTES_PER_PRINCIPAL: String(2 * MiB), REQUEST_BUFFER_MAX_BYTES: String(3 * MiB), ...env },
  });
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
}

interface Answer {
  status: number;
  code: string | undefined;
  headers: Record<string, unknown>;
}

interface Upload {
  request: ClientRequest;
  /** Resolves with the answer, whenever it comes (the upload may never finish). */
  answer: Promise<Answer>;
  /** Resolves once the server has received this many bytes... as far as the client can tell: once written. */
  written: Promise<void>;
  finish(): void;
}

/**
 * A chunked upload (no Content-Length) of `bytes` sent in 64 KiB chunks, then left hanging
 * until finish(): the server never sees its end unless asked.
 */
function upload(base: string, path: string, token: string, bytes: number, type = 'application/octet-stream'): Upload {
  const request = httpRequest(`${base}${path}`, {
    method: 'POST',
    agent: false,
    headers: { authorization: `Bearer ${token}`, 'content-type': type, 'x-envelope-context': 'purpose=flood' },
  });
  request.on('error', () => undefined);
  opened.push(request);
  const answer = new Promise<Answer>((done) => {
    request.on('response', (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        let code: string | undefined;
        try {
          code = (JSON.parse(body) as { code?: string }).code;
        } catch {
          code = undefined;
        }
        done({ status: response.statusCode ?? 0, code, headers: response.headers });
      });
    });
  });
  const written = (async () => {
    for (let sent = 0; sent < bytes; sent += 64 * KiB) {
      const size = Math.min(64 * KiB, bytes - sent);
      if (request.destroyed) return;
      await new Promise<void>((done) => request.write(Buffer.alloc(size, 0x62), () => done()));
    }
  })();
  return { request, answer, written, finish: () => request.end() };
}

/** Waits until the service holds `bytes` of request bodies (written by the client is not yet received). */
async function serviceHolds(bytes: number): Promise<void> {
  const read = async () => Number(/request_buffer_bytes (\d+)/.exec(await t!.metrics.registry.getSingleMetricAsString('request_buffer_bytes'))?.[1]);
  await expect.poll(read, { timeout: 5_000, interval: 20 }).toBe(bytes);
}

/** The answer, or 'pending' if none came within `ms`. */
async function within(answer: Promise<Answer>, ms: number): Promise<Answer | 'pending'> {
  return Promise.race([answer, new Promise<'pending'>((done) => setTimeout(() => done('pending'), ms))]);
}

describe('REQUEST_BUFFER_MAX_BYTES_PER_PRINCIPAL', () => {
  it('refuses the request whose next chunk would take a principal past its share, though its upload never ends; others are served', async () => {
    const base = await start();
    const first = upload(base, '/v1/encrypt/binary', 'token-flooder', 900 * KiB);
    const second = upload(base, '/v1/encrypt/binary', 'token-flooder', 900 * KiB);
    await Promise.all([first.written, second.written]);
    await serviceHolds(1800 * KiB);
    // 1.8 MiB of the flooder's 2 MiB are held; this one goes over after about 200 KiB.
    const third = upload(base, '/v1/encrypt/binary', 'token-flooder', 900 * KiB);
    const refused = await within(third.answer, 5_000);
    expect(refused).toMatchObject({ status: 429, code: 'TooMuchBuffered' });
    expect((refused as Answer).headers['retry-after']).toBeDefined();
    // The rest of that body is never read: the connection goes with the answer.
    expect((refused as Answer).headers.connection).toBe('close');
    // The two held uploads are still pending, not refused, and their bytes are counted.
    expect(await within(first.answer, 100)).toBe('pending');

    // Another principal is served meanwhile.
    const other = upload(base, '/v1/encrypt/binary', 'token-billing', 512 * KiB);
    await other.written;
    other.finish();
    expect(await within(other.answer, 5_000)).toMatchObject({ status: 200 });

    // The held uploads complete normally, and their bytes are given back.
    first.finish();
    second.finish();
    expect(await within(first.answer, 5_000)).toMatchObject({ status: 200 });
    expect(await within(second.answer, 5_000)).toMatchObject({ status: 200 });
    const again = upload(base, '/v1/encrypt/binary', 'token-flooder', 900 * KiB);
    await again.written;
    again.finish();
    expect(await within(again.answer, 5_000)).toMatchObject({ status: 200 });

    const refusals = t!.auditEvents().filter((event) => event.errorCode === 'TooMuchBuffered');
    expect(refusals).toHaveLength(1);
    expect(refusals[0]).toMatchObject({ eventName: 'Encrypt', httpStatus: 429, userIdentity: { principalId: 'flooder' } });
  });

  it('counts JSON bodies too', async () => {
    const base = await start({ JSON_BODY_LIMIT_BYTES: String(MiB) });
    const held = [0, 1].map(() => upload(base, '/v1/encrypt', 'token-flooder', 1000 * KiB, 'application/json'));
    await Promise.all(held.map((one) => one.written));
    await serviceHolds(2000 * KiB);
    const over = upload(base, '/v1/encrypt', 'token-flooder', 900 * KiB, 'application/json');
    expect(await within(over.answer, 5_000)).toMatchObject({ status: 429, code: 'TooMuchBuffered' });
    for (const one of held) one.request.destroy();
  });

  it('refuses with 413 at once a declared body larger than the whole share', async () => {
    const base = await start({ REQUEST_BUFFER_MAX_BYTES_PER_PRINCIPAL: String(512 * KiB) });
    const answer = await within(new Promise<Answer>((done) => {
      const request = httpRequest(`${base}/v1/encrypt/binary`, {
        method: 'POST',
        agent: false,
        headers: { authorization: 'Bearer token-flooder', 'content-type': 'application/octet-stream', 'content-length': String(768 * KiB) },
      });
      request.on('error', () => undefined);
      opened.push(request);
      request.on('response', (response) => {
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
        response.on('end', () => done({ status: response.statusCode ?? 0, code: (JSON.parse(body) as { code: string }).code, headers: response.headers }));
      });
      request.flushHeaders();
    }), 5_000);
    expect(answer).toMatchObject({ status: 413, code: 'PayloadTooLarge' });
  });

  it('charges a declared body whole when its headers arrive: the next one over the share is refused before any byte, and the share comes back when they close', async () => {
    const base = await start();
    /** A binary upload that declares `bytes` and sends only its headers. */
    const declared = (bytes: number): { request: ClientRequest; answer: Promise<Answer> } => {
      const request = httpRequest(`${base}/v1/encrypt/binary`, {
        method: 'POST',
        agent: false,
        headers: { authorization: 'Bearer token-flooder', 'content-type': 'application/octet-stream', 'content-length': String(bytes), 'x-envelope-context': 'purpose=flood' },
      });
      request.on('error', () => undefined);
      opened.push(request);
      const answer = new Promise<Answer>((done) => {
        request.on('response', (response) => {
          let body = '';
          response.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
          response.on('end', () => done({ status: response.statusCode ?? 0, code: (JSON.parse(body) as { code: string }).code, headers: response.headers }));
        });
      });
      request.flushHeaders();
      return { request, answer };
    };
    const held = [declared(MiB), declared(MiB)];
    await serviceHolds(2 * MiB);
    const over = declared(1);
    expect(await within(over.answer, 5_000)).toMatchObject({ status: 429, code: 'TooMuchBuffered', headers: { connection: 'close' } });
    for (const one of held) one.request.destroy();
    await serviceHolds(0);
    const after = upload(base, '/v1/encrypt/binary', 'token-flooder', 16 * KiB);
    await after.written;
    after.finish();
    expect((await within(after.answer, 5_000)) as Answer).toMatchObject({ status: 200 });
  });

  it('summarizes repeated refusals of one principal in one RefusalsSummarized event per window', async () => {
    const base = await start();
    const held = [0, 1].map(() => upload(base, '/v1/encrypt/binary', 'token-flooder', 1000 * KiB));
    await Promise.all(held.map((one) => one.written));
    await serviceHolds(2000 * KiB);
    for (let i = 0; i < 3; i += 1) {
      const over = upload(base, '/v1/encrypt/binary', 'token-flooder', 200 * KiB);
      expect(await within(over.answer, 5_000)).toMatchObject({ status: 429, code: 'TooMuchBuffered' });
    }
    for (const one of held) one.request.destroy();
    await new Promise((done) => setTimeout(done, 200));
    await t!.app.close();
    const events = t!.auditEvents();
    expect(events.filter((event) => event.errorCode === 'TooMuchBuffered')).toHaveLength(1);
    const summaries = events.filter((event) => event.eventName === 'RefusalsSummarized');
    expect(summaries).toHaveLength(1);
    expect(summaries[0]!.serviceEventDetails).toMatchObject({
      principalType: 'api-key',
      principalId: 'flooder',
      summarizedRefusals: 2,
      byCode: { TooMuchBuffered: 2 },
      refusalsInWindow: 3,
    });
  });
});

describe('REQUEST_BUFFER_MAX_BYTES', () => {
  it('refuses any principal once the process budget is used', async () => {
    const base = await start();
    const flooder = [0, 1].map(() => upload(base, '/v1/encrypt/binary', 'token-flooder', 768 * KiB));
    const stranger = [0, 1].map(() => upload(base, '/v1/encrypt/binary', 'token-stranger', 768 * KiB));
    await Promise.all([...flooder, ...stranger].map((one) => one.written));
    await serviceHolds(4 * 768 * KiB);
    // 3 MiB held in all; billing, with nothing held, goes over the process's budget.
    const billing = upload(base, '/v1/encrypt/binary', 'token-billing', 512 * KiB);
    expect(await within(billing.answer, 5_000)).toMatchObject({ status: 429, code: 'BufferFull' });
    for (const one of [...flooder, ...stranger]) one.request.destroy();
    // Bytes of abandoned uploads are given back.
    const later = Date.now() + 5_000;
    let status = 0;
    while (Date.now() < later && status !== 200) {
      const retry = upload(base, '/v1/encrypt/binary', 'token-billing', 512 * KiB);
      await retry.written;
      retry.finish();
      const answer = await within(retry.answer, 5_000);
      status = answer === 'pending' ? 0 : answer.status;
    }
    expect(status).toBe(200);
  });
});

describe('a principal no rule could allow', () => {
  it.each([
    ['/v1/encrypt/binary', 'application/octet-stream', 'Encrypt'],
    ['/v1/encrypt', 'application/json', 'Encrypt'],
    ['/v1/admin/cache/evict', 'application/json', 'EvictDataKeys'],
  ])('%s: 403 before its body is read, audited', async (path, type, eventName) => {
    const base = await start();
    const upload1 = upload(base, path, 'token-nobody', 128 * KiB, type);
    // The upload never finishes: only an answer given before the body can come.
    expect(await within(upload1.answer, 5_000)).toMatchObject({ status: 403, code: 'AccessDenied' });
    upload1.request.destroy();
    const denied = t!.auditEvents().filter((event) => event.httpStatus === 403);
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({ eventName, userIdentity: { principalId: 'nobody' }, additionalEventData: { decision: 'deny' } });
    expect((denied[0]!.additionalEventData as { denyReason: string }).denyReason).toMatch(/no rule/);
  });
});
