/**
 * Hostile requests against a listening app (real sockets: slow clients need them). Each one
 * must get a 4xx or a closed connection within bounded time, the service must stay up (a
 * normal request succeeds afterwards, and during the slow-client attack), and memory must stay
 * bounded.
 *
 * Server timeouts under test (src/app.ts serverTimeouts): REQUEST_TIMEOUT_MS = 2 s here, so
 * headersTimeout = 2 s, connectionsCheckingInterval = 1 s: a slow client is cut within ~3 s.
 */
import { connect, type Socket } from 'node:net';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTH, buildTestApp, type TestApp } from '../helpers/app.js';

const REQUEST_TIMEOUT_MS = 2_000;
const BODY_LIMIT = 1024 * 1024;
/** headersTimeout/requestTimeout + the checking interval + slack for a loaded CI machine. */
const SLOW_CLIENT_BOUND_MS = REQUEST_TIMEOUT_MS + 1_000 + 2_000;
/** Anything that is not a slow client must be answered at once. */
const FAST_BOUND_MS = 2_000;

let t: TestApp;
let base: string;
let port: number;
let memoryBefore: NodeJS.MemoryUsage;

beforeAll(async () => {
  t = await buildTestApp({
    env: { REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS), BODY_LIMIT_BYTES: String(BODY_LIMIT) },
  });
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const address = t.app.server.address();
  port = typeof address === 'object' && address ? address.port : 0;
  base = `http://127.0.0.1:${port}`;
  await normalRequestSucceeds();
  memoryBefore = process.memoryUsage();
});
afterAll(async () => t?.close());

/** The service is up: a real encrypt/decrypt round trip works. */
async function normalRequestSucceeds(): Promise<void> {
  const encrypted = await request(base).post('/v1/encrypt').set(AUTH).timeout(FAST_BOUND_MS).send({ plaintext: 'aGVsbG8=', context: { tenant: 'acme' } });
  expect(encrypted.status).toBe(200);
  const { ciphertext } = encrypted.body as { ciphertext: string };
  const decrypted = await request(base).post('/v1/decrypt').set(AUTH).timeout(FAST_BOUND_MS).send({ ciphertext });
  expect(decrypted.status).toBe(200);
  expect((decrypted.body as { plaintext: string }).plaintext).toBe('aGVsbG8=');
}

interface RawOutcome {
  /** HTTP status if a response arrived, undefined if the connection closed without one. */
  status: number | undefined;
  body: string;
  ms: number;
}

/**
 * Writes `chunks` on a raw socket (waiting `intervalMs` between them), then waits for the
 * server to answer or close. Never waits longer than `limitMs` (then reports status -1).
 */
function raw(chunks: (string | Buffer)[], { intervalMs = 0, limitMs = SLOW_CLIENT_BOUND_MS + 2_000 } = {}): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket: Socket = connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (status?: number) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(limit);
      socket.destroy();
      const text = Buffer.concat(received).toString('latin1');
      const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: status ?? (match ? Number(match[1]) : undefined), body: text, ms: Math.round(performance.now() - started) });
    };
    const limit = setTimeout(() => finish(-1), limitMs);
    socket.on('data', (chunk: Buffer) => {
      received.push(chunk);
      // A complete response (headers + Content-Length body) ends the exchange for our purposes.
      const text = Buffer.concat(received).toString('latin1');
      const head = text.indexOf('\r\n\r\n');
      const length = /\r\ncontent-length: (\d+)/i.exec(text);
      if (head >= 0 && length && text.length - head - 4 >= Number(length[1])) finish();
    });
    socket.on('close', () => finish());
    socket.on('error', () => finish());
    let index = 0;
    const writeNext = () => {
      if (done || socket.destroyed) return;
      const chunk = chunks[index++];
      if (chunk === undefined) return;
      socket.write(chunk);
      if (index < chunks.length) timer = setTimeout(writeNext, intervalMs);
    };
    socket.on('connect', writeNext);
  });
}

function post(path: string, body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }): string[] {
  const head =
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${AUTH.authorization}\r\nConnection: close\r\n` +
    Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('') +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
  return [head + body.toString()];
}

async function send(body: string, headers?: Record<string, string>, path = '/v1/encrypt'): Promise<RawOutcome> {
  return raw(post(path, body, headers));
}

function expectRefused(outcome: RawOutcome, bound = FAST_BOUND_MS): void {
  expect(outcome.status, outcome.body.slice(0, 300)).not.toBe(-1); // answered or closed, not hanging
  if (outcome.status !== undefined) {
    expect(outcome.status).toBeGreaterThanOrEqual(400);
    expect(outcome.status).toBeLessThan(500);
  }
  expect(outcome.ms).toBeLessThan(bound);
}

/** A one-item batch whose item was malformed: answered at once, the item's own 400 in results. */
function expectItemRefused(outcome: RawOutcome): void {
  expect(outcome.status, outcome.body.slice(0, 300)).toBe(200);
  expect(outcome.ms).toBeLessThan(FAST_BOUND_MS);
  const body = JSON.parse(outcome.body.slice(outcome.body.indexOf('\r\n\r\n') + 4)) as { results: { error?: { status: number; code: string } }[] };
  expect(body.results).toEqual([{ error: expect.objectContaining({ status: 400, code: 'InvalidRequest' }) }]);
}

const problemCode = (outcome: RawOutcome): string | undefined =>
  /"code":"([A-Za-z]+)"/.exec(outcome.body.slice(outcome.body.indexOf('\r\n\r\n')))?.[1];

describe('hostile bodies get a 4xx at once', () => {
  it('deeply nested JSON (10k levels of objects, 100k of arrays)', async () => {
    const objects = `{"plaintext":"aGk=","context":${'{"a":'.repeat(10_000)}"x"${'}'.repeat(10_000)}}`;
    const objectsOutcome = await send(objects);
    expectRefused(objectsOutcome);
    expect(objectsOutcome.status).toBe(400);
    const arrays = `{"plaintext":"aGk=","context":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const arraysOutcome = await send(arrays);
    expectRefused(arraysOutcome);
    expect(arraysOutcome.status).toBe(400);
  });

  it('huge contexts: 100k entries, one 512 KiB value', async () => {
    const many = JSON.stringify({ plaintext: 'aGk=', context: Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, 'v'])) });
    expect(Buffer.byteLength(many)).toBeLessThan(BODY_LIMIT * 2);
    const manyOutcome = await raw(post('/v1/encrypt', many.length > BODY_LIMIT ? many.slice(0, BODY_LIMIT - 10) + '"}}' : many));
    expectRefused(manyOutcome);
    const long = await send(JSON.stringify({ plaintext: 'aGk=', context: { tenant: 'x'.repeat(512 * 1024) } }));
    expectRefused(long);
    expect(long.status).toBe(400);
  });

  it('10k-key objects at the top level and in a batch item', async () => {
    const top = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`f${i}`, i]));
    const topOutcome = await send(JSON.stringify({ plaintext: 'aGk=', ...top }));
    expectRefused(topOutcome);
    expect(topOutcome.status).toBe(400);
    // In a batch the item is refused on its own (its 400 in results), just as fast.
    const batch = await send(JSON.stringify({ items: [{ plaintext: 'aGk=', ...top }] }), undefined, '/v1/encrypt/batch');
    expectItemRefused(batch);
  });

  it('__proto__ and constructor.prototype keys are refused (no prototype pollution)', async () => {
    const bodies = [
      '{"plaintext":"aGk=","__proto__":{"polluted":"yes"}}',
      '{"plaintext":"aGk=","context":{"__proto__":{"polluted":"yes"}}}',
      '{"plaintext":"aGk=","context":{"__proto__":"yes"}}',
      '{"plaintext":"aGk=","constructor":{"prototype":{"polluted":"yes"}}}',
      '{"items":[{"plaintext":"aGk=","context":{"constructor":{"prototype":{"polluted":"yes"}}}}]}',
    ];
    for (const body of bodies) {
      const outcome = await send(body, undefined, body.startsWith('{"items"') ? '/v1/encrypt/batch' : '/v1/encrypt');
      expectRefused(outcome);
      expect(outcome.status, body).toBe(400);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('a context key named "constructor" (a plain string value) is just a key: it round-trips', async () => {
    const encrypted = await request(base).post('/v1/encrypt').set(AUTH).send({ plaintext: 'aGk=', context: { constructor: 'x', toString: 'y', hasOwnProperty: 'z' } });
    expect(encrypted.status).toBe(200);
    const { ciphertext } = encrypted.body as { ciphertext: string };
    const decrypted = await request(base).post('/v1/decrypt').set(AUTH).send({ ciphertext, context: { constructor: 'x', toString: 'y', hasOwnProperty: 'z' } });
    expect(decrypted.status).toBe(200);
    expect((decrypted.body as { context: unknown }).context).toEqual({ constructor: 'x', toString: 'y', hasOwnProperty: 'z' });
  });

  it('invalid base64 and invalid ciphertexts', async () => {
    for (const plaintext of ['not base64!', 'aGk', '====', 'aGk=\n', 'a'.repeat(1001) + '=']) {
      const outcome = await send(JSON.stringify({ plaintext }));
      expectRefused(outcome);
      expect(outcome.status, plaintext).toBe(400);
    }
    const ciphertext = await send(JSON.stringify({ ciphertext: `ev1:${'A'.repeat(50_000)}` }), undefined, '/v1/decrypt');
    expectRefused(ciphertext);
    expect(ciphertext.status).toBe(422);
  });

  it('wrong content types: text/plain, multipart, form, none', async () => {
    const json = JSON.stringify({ plaintext: 'aGk=' });
    const cases: [Record<string, string>, string | Buffer, number][] = [
      [{ 'content-type': 'text/plain' }, json, 415],
      [{ 'content-type': 'multipart/form-data; boundary=x' }, `--x\r\nContent-Disposition: form-data; name="plaintext"\r\n\r\naGk=\r\n--x--\r\n`, 415],
      [{ 'content-type': 'application/x-www-form-urlencoded' }, 'plaintext=aGk%3D', 415],
      [{}, json, 415],
    ];
    for (const [headers, body, status] of cases) {
      const outcome = await raw(post('/v1/encrypt', body, headers));
      expect(outcome.status, JSON.stringify(headers)).toBe(status);
      expectRefused(outcome);
      expect(problemCode(outcome)).toBe('UnsupportedMediaType');
    }
    // A charset parameter on JSON is fine (the body is parsed as UTF-8 regardless, RFC 8259).
    expect((await raw(post('/v1/encrypt', json, { 'content-type': 'application/json; charset=utf-8' }))).status).toBe(200);
  });

  it('empty bodies', async () => {
    const emptyJson = await send('');
    expectRefused(emptyJson);
    expect(emptyJson.status).toBe(400);
    const emptyObject = await send('{}');
    expect(emptyObject.status).toBe(400);
    const nullBody = await send('null');
    expect(nullBody.status).toBe(400);
    const noBody = await raw([`POST /v1/encrypt HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH.authorization}\r\nConnection: close\r\n\r\n`]);
    expectRefused(noBody);
    expect(noBody.status).toBe(400);
  });

  it('a body over BODY_LIMIT_BYTES -> 413, declared or chunked', async () => {
    const big = JSON.stringify({ plaintext: 'A'.repeat(BODY_LIMIT + 4) });
    const declared = await send(big);
    expectRefused(declared);
    expect(declared.status).toBe(413);
    expect(problemCode(declared)).toBe('PayloadTooLarge');
    // Chunked, no Content-Length: cut when the limit is crossed.
    const head = `POST /v1/encrypt HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH.authorization}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`;
    const chunk = 'A'.repeat(256 * 1024);
    const start = '{"plaintext":"';
    const chunks = [`${head}${start.length.toString(16)}\r\n${start}\r\n`];
    for (let i = 0; i < 6; i++) chunks.push(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
    const chunked = await raw(chunks, { intervalMs: 5 });
    expectRefused(chunked);
    expect(chunked.status).toBe(413);
  });

  it('a lying Content-Length (larger than the body sent) does not hang past requestTimeout', async () => {
    const outcome = await raw([
      `POST /v1/encrypt HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH.authorization}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"plaintext":"aGk="}`,
    ]);
    expectRefused(outcome, SLOW_CLIENT_BOUND_MS);
  });

  it('known paths with another method: 405 with Allow, whatever the body; unknown paths: 404', async () => {
    const cases: [string, string, string][] = [
      ['TRACE', '/v1/encrypt', 'POST'],
      ['GET', '/v1/decrypt', 'POST'],
      ['DELETE', '/healthz', 'GET, HEAD'],
      ['OPTIONS', '/v1/keys', 'GET, HEAD'],
      // Fastify wants a Content-Type for QUERY before it even looks for the route.
      ['QUERY', '/readyz', 'GET, HEAD'],
    ];
    for (const [method, path, allow] of cases) {
      const outcome = await raw([`${method} ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH.authorization}\r\nConnection: close\r\n\r\n`]);
      expect(outcome.status, `${method} ${path}`).toBe(405);
      expect(outcome.body.toLowerCase()).toContain(`\r\nallow: ${allow.toLowerCase()}\r\n`);
      expect(problemCode(outcome)).toBe('MethodNotAllowed');
    }
    const unknown = await raw([`GET /v1/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`]);
    expect(unknown.status).toBe(404);
  });

  it('an empty context key is refused by schema validation (400)', async () => {
    const outcome = await send(JSON.stringify({ plaintext: 'aGk=', context: { '': 'x' } }));
    expect(outcome.status).toBe(400);
    expect(problemCode(outcome)).toBe('InvalidRequest');
  });

  it('context keys with line terminators: value rules still apply, and decrypt returns every entry', async () => {
    // Found by schemathesis: the `^.*$` pattern TypeBox's Record emitted does not match "\n".
    for (const body of [
      { plaintext: 'aGk=', context: { 'a\nb': 123 } },
      { plaintext: 'aGk=', context: { 'a\u2028b': 'x'.repeat(3_000) } },
      { items: [{ plaintext: 'aGk=', context: { 'a\rb': { nested: true } } }] },
    ]) {
      const outcome = await send(JSON.stringify(body), undefined, 'items' in body ? '/v1/encrypt/batch' : '/v1/encrypt');
      if ('items' in body) {
        expectItemRefused(outcome);
        continue;
      }
      expect(outcome.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(problemCode(outcome)).toBe('InvalidRequest');
    }
    const context = { 'line\nbreak': 'x', 'separator\u2028': 'y', plain: 'z' };
    const encrypted = await request(base).post('/v1/encrypt').set(AUTH).send({ plaintext: 'aGk=', context });
    expect(encrypted.status).toBe(200);
    const decrypted = await request(base).post('/v1/decrypt').set(AUTH).send({ ciphertext: encrypted.body.ciphertext });
    expect(decrypted.status).toBe(200);
    expect(decrypted.body.context).toEqual(context);
  });

  it('the service is still up', normalRequestSucceeds);
});

describe('slow clients are cut within bounded time', () => {
  // Each waits out the server's timeouts on its own socket: they run side by side.
  describe.concurrent('a single slow client', () => {
    it('slowloris: headers trickled one byte every 100 ms -> 408 or closed', async () => {
      const head = `POST /v1/encrypt HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${'a'.repeat(200)}`;
      const outcome = await raw([...head], { intervalMs: 100 });
      expectRefused(outcome, SLOW_CLIENT_BOUND_MS);
      expect(outcome.ms).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 100);
    });

    it('slow body: declared 1 KiB, one byte every 100 ms -> 408 or closed', async () => {
      const head = `POST /v1/encrypt HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH.authorization}\r\nContent-Type: application/json\r\nContent-Length: 1024\r\n\r\n`;
      const outcome = await raw([head, ...'{"plaintext":"'.padEnd(1024, 'A')], { intervalMs: 100 });
      expectRefused(outcome, SLOW_CLIENT_BOUND_MS);
    });

    it('connect and say nothing -> closed', async () => {
      const outcome = await raw([]);
      expectRefused(outcome, SLOW_CLIENT_BOUND_MS);
    });
  });

  it('200 slowloris connections at once: normal requests are served meanwhile, all are cut', async () => {
    const attackers = Array.from({ length: 200 }, () => raw([...'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'], { intervalMs: 200 }));
    await new Promise((done) => setTimeout(done, 300));
    const started = performance.now();
    await normalRequestSucceeds();
    expect(performance.now() - started).toBeLessThan(FAST_BOUND_MS);
    const outcomes = await Promise.all(attackers);
    for (const outcome of outcomes) expectRefused(outcome, SLOW_CLIENT_BOUND_MS + 1_000);
  });

  it('the service is still up, with bounded memory', async () => {
    await normalRequestSucceeds();
    const after = process.memoryUsage();
    // Generous: the test process itself built multi-megabyte bodies. A leak of the bodies the
    // service refused (or of sockets) would show as far more.
    expect(after.heapUsed - memoryBefore.heapUsed).toBeLessThan(150 * 1024 * 1024);
    expect(after.rss - memoryBefore.rss).toBeLessThan(300 * 1024 * 1024);
  });
});
