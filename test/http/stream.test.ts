/**
 * The streaming routes (/v1/encrypt/stream, /v1/decrypt/stream): round trips at the sizes
 * around a segment, with and without a Content-Length, opened by the decoder written from
 * docs/FORMAT.md; every change to a stream refused (before the 200 when the first segment
 * shows it, by an abnormal end after it); the limits, the cache accounting and the two audit
 * events; a client that goes away in either direction.
 *
 * Requests that need chunked uploads, a client abort or the raw end of a response use node:http
 * directly: supertest buffers whole bodies and cannot show how a response ended.
 */
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { EnvelopeClient, StreamCutError } from '../../src/client/index.js';
import { AUTH, DEV_TOKEN, buildTestApp, type TestApp } from '../helpers/app.js';
import { referenceDecrypt, referenceKeyBlock } from '../fixtures/vectors/stream-reference.js';

const OCTET = 'application/octet-stream';
const S = 64 * 1024;
const SEGMENT = S + 16;

const binaryParser = ((res: NodeJS.ReadableStream, callback: (error: Error | null, body: Buffer) => void): void => {
  const chunks: Buffer[] = [];
  res.on('data', (chunk: Buffer) => chunks.push(chunk));
  res.on('end', () => callback(null, Buffer.concat(chunks)));
}) as never;

interface RawResult {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
  /** True when the response ended with its terminator; false when the connection was cut. */
  complete: boolean;
  error?: string;
}

/** One request through node:http: the body sent in `chunks` (chunked unless `length`), the response read to its end or its cut. */
function raw(t: TestApp, path: string, chunks: Buffer[], headers: Record<string, string> = {}, options: { length?: boolean; abortAfterResponseBytes?: number } = {}): Promise<RawResult> {
  const { port } = t.app.server.address() as AddressInfo;
  return new Promise((resolve, reject) => {
    const total = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      path,
      method: 'POST',
      headers: { ...AUTH, 'content-type': OCTET, ...(options.length ? { 'content-length': String(total) } : {}), ...headers },
    });
    req.on('error', (error) => resolve({ status: 0, headers: {}, body: Buffer.alloc(0), complete: false, error: (error as NodeJS.ErrnoException).code ?? error.message }));
    req.on('response', (res) => {
      const received: Buffer[] = [];
      let size = 0;
      let error: string | undefined;
      res.on('data', (chunk: Buffer) => {
        received.push(chunk);
        size += chunk.length;
        if (options.abortAfterResponseBytes !== undefined && size >= options.abortAfterResponseBytes) req.destroy();
      });
      res.on('aborted', () => (error ??= 'aborted'));
      res.on('error', (e) => (error ??= (e as NodeJS.ErrnoException).code ?? e.message));
      res.on('close', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(received), complete: res.complete, ...(error ? { error } : {}) }));
    });
    (async () => {
      for (const chunk of chunks) {
        if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
      }
      req.end();
    })().catch(reject);
  });
}

function split(bytes: Buffer, size = 50_000): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) out.push(bytes.subarray(at, at + size));
  return out.length ? out : [Buffer.alloc(0)];
}

async function referenceOpen(t: TestApp, sealed: Buffer, aad = Buffer.alloc(0)): Promise<ReturnType<typeof referenceDecrypt>> {
  const { keyArn, wrappedKey, context } = referenceKeyBlock(sealed);
  const key = await t.provider.decryptDataKey(wrappedKey, keyArn, context);
  return referenceDecrypt(sealed, key.plaintextKey, aad);
}

/** stream_outcomes_total, as `route outcome` -> count. */
async function outcomes(t: TestApp): Promise<Record<string, number>> {
  const metric = t.metrics.registry.getSingleMetric('stream_outcomes_total');
  const values = metric ? (await metric.get()).values : [];
  return Object.fromEntries(values.map((v) => [`${String(v.labels.route)} ${String(v.labels.outcome)}`, v.value]));
}

const waitFor = async (check: () => boolean, ms = 3000) => {
  const until = Date.now() + ms;
  while (!check() && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  return check();
};

describe('streaming routes', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ env: { BODY_LIMIT_BYTES: '1048576', JSON_BODY_LIMIT_BYTES: '1048576', STREAM_MAX_BYTES: String(4 * 1024 * 1024), CACHE_MAX_BYTES: String(2 * 1024 * 1024) } });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => t?.close());

  const encrypt = (body: Buffer, headers: Record<string, string> = {}) =>
    request(t.app.server).post('/v1/encrypt/stream').set(AUTH).set('content-type', OCTET).set(headers).buffer(true).parse(binaryParser).send(body);
  const decrypt = (body: Buffer, headers: Record<string, string> = {}) =>
    request(t.app.server).post('/v1/decrypt/stream').set(AUTH).set('content-type', OCTET).set(headers).buffer(true).parse(binaryParser).send(body);
  const eventsOf = (requestId: string) => t.auditEvents().filter((e) => e.requestID === requestId);

  for (const size of [0, 1, S - 1, S, S + 1, 20 * S + 5]) {
    it(`${size} bytes round-trip with a Content-Length, and the decoder from docs/FORMAT.md opens the stream`, async () => {
      const plaintext = randomBytes(size);
      const aad = Buffer.from(`row-${size}`);
      const headers = { 'x-envelope-context': 'tenant=acme&purpose=backup', 'x-envelope-aad': aad.toString('base64') };
      const sealed = await encrypt(plaintext, headers);
      expect(sealed.status).toBe(200);
      expect(sealed.headers['x-envelope-key-id']).toMatch(/^arn:aws:kms:/);
      const reference = await referenceOpen(t, sealed.body as Buffer, aad);
      expect(reference.plaintext.equals(plaintext)).toBe(true);
      expect(reference.context).toEqual({ tenant: 'acme', purpose: 'backup' });
      const opened = await decrypt(sealed.body as Buffer, { 'x-envelope-aad': headers['x-envelope-aad'] });
      expect(opened.status).toBe(200);
      expect(opened.headers['x-envelope-context']).toBe('purpose=backup&tenant=acme');
      expect((opened.body as Buffer).equals(plaintext)).toBe(true);
    });
  }

  it('decrypt takes the ev2: text form too (what a form or Swagger UI sends), chunked at any boundary', async () => {
    const plaintext = randomBytes(S + 7);
    const sealed = (await encrypt(plaintext)).body as Buffer;
    const text = Buffer.from(`ev2:${sealed.toString('base64url').replace(/(.{76})/g, '$1\n')}\n`);
    // Chunks of 3 bytes: the prefix and every base64 group are split across writes.
    const opened = await raw(t, '/v1/decrypt/stream', split(text, 3));
    expect(opened.status).toBe(200);
    expect(opened.complete).toBe(true);
    expect(opened.body.equals(plaintext)).toBe(true);
    const bad = await decrypt(Buffer.from(`ev2:${sealed.toString('base64url').slice(0, 40)}*`));
    expect(bad.status).toBe(422);
    expect(JSON.parse((bad.body as Buffer).toString()).code).toBe('MalformedCiphertext');
  });

  it('streams chunked, in both directions, more than BODY_LIMIT_BYTES (through the client library, as a service calls it)', async () => {
    const client = new EnvelopeClient({ baseUrl: `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`, token: DEV_TOKEN });
    const collect = async (stream: Readable) => {
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    };
    const plaintext = randomBytes(3 * 1024 * 1024 + 11);
    const sealed = await collect(client.encryptStream(Readable.from(split(plaintext))));
    expect((await referenceOpen(t, sealed)).plaintext.equals(plaintext)).toBe(true);
    const opened = await collect(client.decryptStream(Readable.from(split(sealed, 30_000))));
    expect(opened.equals(plaintext)).toBe(true);
    // A cut stream errors in the library, never ends: the caller cannot mistake it for a whole one.
    const changed = Buffer.from(sealed);
    changed[changed.length - 100]! ^= 1;
    await expect(collect(client.decryptStream(Readable.from(split(changed, 30_000))))).rejects.toBeInstanceOf(StreamCutError);
  });

  it('writes two chained events per stream: started, then ended with the sizes and the outcome', async () => {
    const plaintext = randomBytes(2 * S + 9);
    const sealed = await encrypt(plaintext);
    const events = eventsOf(sealed.headers['x-request-id'] as string);
    expect(events.map((e) => (e.additionalEventData as { stream: { phase: string } }).stream.phase)).toEqual(['started', 'ended']);
    expect((events[1]!.sequence as number) > (events[0]!.sequence as number)).toBe(true);
    expect(events[0]).toMatchObject({ eventName: 'EncryptStream', httpStatus: 200, requestParameters: { plaintextBytes: plaintext.length } });
    expect(events[1]).toMatchObject({
      eventName: 'EncryptStream',
      requestParameters: { plaintextBytes: plaintext.length },
      responseElements: { ciphertextBytes: (sealed.body as Buffer).length },
      additionalEventData: { stream: { phase: 'ended', outcome: 'completed', bytesIn: plaintext.length, bytesOut: (sealed.body as Buffer).length, segments: 3 } },
    });
    const opened = await decrypt(sealed.body as Buffer);
    const decryptEvents = eventsOf(opened.headers['x-request-id'] as string);
    expect(decryptEvents[1]).toMatchObject({ eventName: 'DecryptStream', additionalEventData: { stream: { outcome: 'completed', bytesOut: plaintext.length, segments: 3 } } });
  });

  describe('a changed stream', () => {
    let sealed: Buffer;
    let headerLength: number;
    const segments = () => {
      const out: Buffer[] = [];
      for (let at = headerLength; at < sealed.length; at += SEGMENT) out.push(sealed.subarray(at, at + SEGMENT));
      return out;
    };
    beforeAll(async () => {
      sealed = (await encrypt(randomBytes(6 * S + 1000))).body as Buffer;
      headerLength = (await referenceOpen(t, sealed)).headerLength;
    });

    const auditHas = (segment: number) =>
      t.auditEvents().some((e) => (e.additionalEventData as { stream?: { failedSegment?: number } }).stream?.failedSegment === segment);

    /** After the 200: the client sees a cut response, and the audit records the failing segment. */
    const expectCutAt = async (changed: Buffer, segment: number) => {
      const result = await raw(t, '/v1/decrypt/stream', split(changed), {}, { length: true });
      // The 200 and some segments, then a cut; or, when the cut comes while the client is still
      // uploading, a reset that can reach the client before the response does. Never a clean end.
      expect(result.complete).toBe(false);
      expect(result.error).toMatch(/aborted|ECONNRESET|EPIPE/);
      if (result.status === 0) return expect(await waitFor(() => auditHas(segment))).toBe(true);
      expect(result.status).toBe(200);
      // Only verified segments were released: a prefix of the plaintext, whole segments.
      expect(result.body.length).toBeLessThanOrEqual(segment * S);
      expect(await waitFor(() => eventsOf(result.headers['x-request-id'] as string).length === 2)).toBe(true);
      expect(eventsOf(result.headers['x-request-id'] as string)[1]).toMatchObject({
        additionalEventData: { stream: { phase: 'ended', outcome: 'authentication-failed', failedSegment: segment } },
      });
    };

    for (const [i, j] of [[1, 2], [4, 5]] as const) {
      it(`segments ${i} and ${j} swapped: cut at segment ${i}`, async () => {
        const s = segments();
        [s[i], s[j]] = [s[j]!, s[i]!];
        await expectCutAt(Buffer.concat([sealed.subarray(0, headerLength), ...s]), i);
      });
    }
    for (const i of [2, 5]) {
      it(`segment ${i} dropped: cut at segment ${i}`, async () => {
        const s = segments();
        s.splice(i, 1);
        await expectCutAt(Buffer.concat([sealed.subarray(0, headerLength), ...s]), i);
      });
      it(`segment ${i} duplicated: cut at segment ${i + 1}`, async () => {
        const s = segments();
        s.splice(i, 0, s[i]!);
        await expectCutAt(Buffer.concat([sealed.subarray(0, headerLength), ...s]), i + 1);
      });
    }
    for (const keep of [2, 6]) {
      it(`truncated exactly at a segment boundary (${keep} segments kept): cut at segment ${keep - 1}`, async () => {
        await expectCutAt(Buffer.concat([sealed.subarray(0, headerLength), ...segments().slice(0, keep)]), keep - 1);
      });
    }
    it('truncated inside segment 3: cut at segment 3', async () => expectCutAt(sealed.subarray(0, headerLength + 3 * SEGMENT + 100), 3));
    for (const extra of [1, SEGMENT]) {
      it(`extended by ${extra} bytes: cut at the last segment`, async () => expectCutAt(Buffer.concat([sealed, randomBytes(extra)]), 6));
    }
    it('a flipped bit in segment 4: cut at segment 4', async () => {
      const changed = Buffer.from(sealed);
      const at = headerLength + 4 * SEGMENT + 10;
      changed.writeUInt8(changed.readUInt8(at) ^ 1, at);
      await expectCutAt(changed, 4);
    });

    it('a change in the first segment, or a wrong aad, is refused before the 200 (422), with one event', async () => {
      const changed = Buffer.from(sealed);
      changed.writeUInt8(changed.readUInt8(headerLength + 5) ^ 1, headerLength + 5);
      const tampered = await decrypt(changed);
      expect(tampered.status).toBe(422);
      expect(tampered.headers['content-type']).toMatch(/problem\+json/);
      const wrongAad = await decrypt(sealed, { 'x-envelope-aad': Buffer.from('other').toString('base64') });
      expect(wrongAad.status).toBe(422);
      const events = eventsOf(wrongAad.headers['x-request-id'] as string);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ httpStatus: 422, errorCode: 'AuthenticationFailed' });
    });

    it('a wrong expected context is a 422 before the 200; a v1 envelope or garbage is refused', async () => {
      expect((await decrypt(sealed, { 'x-envelope-context': 'tenant=other' })).status).toBe(422);
      expect((await decrypt(Buffer.from([1, 1, 0, 0]))).status).toBe(422);
      expect((await decrypt(Buffer.from('not a stream'))).status).toBe(422);
    });
  });

  describe('limits', () => {
    it('a declared Content-Length above STREAM_MAX_BYTES is a 413 before any work', async () => {
      const result = await raw(t, '/v1/encrypt/stream', [Buffer.alloc(10)], { 'content-length': String(4 * 1024 * 1024 + 1), connection: 'close' });
      expect(result.status).toBe(413);
    });
    it('a chunked stream that grows past STREAM_MAX_BYTES is cut and recorded as too-large', async () => {
      const result = await raw(t, '/v1/encrypt/stream', split(randomBytes(4 * 1024 * 1024 + 70_000), 64 * 1024));
      expect(result.complete).toBe(false);
      expect(result.error).toMatch(/aborted|ECONNRESET|EPIPE/);
      // The reset may reach the client before the response headers: find the event by its outcome.
      const tooLarge = () => t.auditEvents().filter((e) => (e.additionalEventData as { stream?: { outcome?: string } }).stream?.outcome === 'too-large');
      expect(await waitFor(() => tooLarge().length === 1)).toBe(true);
      expect(tooLarge()[0]).toMatchObject({ eventName: 'EncryptStream', additionalEventData: { stream: { phase: 'ended' } } });
      // Stopped at the first chunk past the limit, not at the end of the upload.
      const { bytesIn } = (tooLarge()[0]!.additionalEventData as { stream: { bytesIn: number } }).stream;
      expect(bytesIn).toBeGreaterThan(4 * 1024 * 1024);
      expect(bytesIn).toBeLessThan(4 * 1024 * 1024 + 70_000);
    expect((await outcomes(t))['/v1/encrypt/stream too-large']).toBe(1);
    });
    it('takes only application/octet-stream', async () => {
      const result = await request(t.app.server).post('/v1/encrypt/stream').set(AUTH).set('content-type', 'application/json').send('{}');
      expect(result.status).toBe(415);
    });
  });

  describe('the data-key cache', () => {
    it('streams with a Content-Length under the byte cap share a cached key; a larger or chunked stream gets its own', async () => {
      const headers = { 'x-envelope-context': 'cache=stream-test' };
      const dataKeyOf = (requestId: string) => eventsOf(requestId)[0]!.additionalEventData as { dataKeyId: string; cacheHit: boolean };
      const first = await encrypt(randomBytes(1000), headers);
      const second = await encrypt(randomBytes(1000), headers);
      expect(dataKeyOf(second.headers['x-request-id'] as string)).toMatchObject({ cacheHit: true, dataKeyId: dataKeyOf(first.headers['x-request-id'] as string).dataKeyId });
      // CACHE_MAX_BYTES is 2 MiB here.
      const large = await raw(t, '/v1/encrypt/stream', split(randomBytes(2 * 1024 * 1024 + 1)), headers, { length: true });
      expect(dataKeyOf(large.headers['x-request-id'] as string)).toMatchObject({ cacheHit: false });
      expect(dataKeyOf(large.headers['x-request-id'] as string).dataKeyId).not.toBe(dataKeyOf(first.headers['x-request-id'] as string).dataKeyId);
      const chunked = await raw(t, '/v1/encrypt/stream', [randomBytes(10)], headers);
      expect(dataKeyOf(chunked.headers['x-request-id'] as string)).toMatchObject({ cacheHit: false });
      const third = await encrypt(randomBytes(1000), headers);
      expect(dataKeyOf(third.headers['x-request-id'] as string)).toMatchObject({ cacheHit: true, dataKeyId: dataKeyOf(first.headers['x-request-id'] as string).dataKeyId });
    });

    it("a stream's bytes count against the cached key's byte cap", async () => {
      const headers = { 'x-envelope-context': 'cache=stream-bytes' };
      const dataKeyOf = (requestId: string) => eventsOf(requestId)[0]!.additionalEventData as { dataKeyId: string; cacheHit: boolean };
      const idOf = (response: RawResult) => response.headers['x-request-id'] as string;
      // CACHE_MAX_BYTES is 2 MiB here: 1.5 MiB, then 1 MiB more would pass it.
      const first = await raw(t, '/v1/encrypt/stream', split(randomBytes(1536 * 1024)), headers, { length: true });
      const small = await raw(t, '/v1/encrypt/stream', split(randomBytes(1000)), headers, { length: true });
      expect(dataKeyOf(idOf(small))).toMatchObject({ cacheHit: true, dataKeyId: dataKeyOf(idOf(first)).dataKeyId });
      const over = await raw(t, '/v1/encrypt/stream', split(randomBytes(1024 * 1024)), headers, { length: true });
      expect(dataKeyOf(idOf(over))).toMatchObject({ cacheHit: false });
      expect(dataKeyOf(idOf(over)).dataKeyId).not.toBe(dataKeyOf(idOf(first)).dataKeyId);
    });
  });

  describe('a client that goes away', () => {
    it('mid-upload: the encrypt stops and is recorded as aborted-by-client', async () => {
      const { port } = t.app.server.address() as AddressInfo;
      const requestId = await new Promise<string>((resolve) => {
        const req = httpRequest({ host: '127.0.0.1', port, path: '/v1/encrypt/stream', method: 'POST', headers: { ...AUTH, 'content-type': OCTET } });
        req.on('error', () => undefined);
        req.on('response', (res) => {
          res.on('error', () => undefined);
          res.on('data', () => undefined);
          // The response has started: now go away in the middle of the upload.
          setTimeout(() => {
            req.destroy();
            resolve(res.headers['x-request-id'] as string);
          }, 50);
        });
        req.write(randomBytes(3 * S));
      });
      expect(await waitFor(() => eventsOf(requestId).length === 2)).toBe(true);
      expect(eventsOf(requestId)[1]).toMatchObject({ additionalEventData: { stream: { phase: 'ended', outcome: 'aborted-by-client' } } });
      expect((await outcomes(t))['/v1/encrypt/stream aborted-by-client']).toBeGreaterThanOrEqual(1);
    });

    it('mid-download: the decrypt stops reading the upload and is recorded as aborted-by-client', async () => {
      const plaintext = randomBytes(3 * 1024 * 1024);
      const sealed = (await raw(t, '/v1/encrypt/stream', split(plaintext))).body;
      const result = await raw(t, '/v1/decrypt/stream', split(sealed, 16 * 1024), {}, { abortAfterResponseBytes: 2 * S });
      const requestId = result.headers['x-request-id'] as string;
      expect(result.status).toBe(200);
      expect(await waitFor(() => eventsOf(requestId).length === 2)).toBe(true);
      const ended = eventsOf(requestId)[1]!.additionalEventData as { stream: { outcome: string; bytesIn: number } };
      expect(ended.stream.outcome).toBe('aborted-by-client');
      // It did not go on reading the rest of the upload for nobody.
      expect(ended.stream.bytesIn).toBeLessThan(sealed.length);
    });
  });
});

describe('backpressure and the fail-closed audit', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ env: { STREAM_SPOOL_MAX_BYTES_PER_PRINCIPAL: String(16 * 1024 * 1024) } });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => t?.close());

  it('a client that does not read its answer is read on into the spool, up to its quota, then cut and audited as spool-quota', async () => {
    const { port } = t.app.server.address() as AddressInfo;
    const total = 256 * 1024 * 1024;
    let written = 0;
    const req = httpRequest({ host: '127.0.0.1', port, path: '/v1/encrypt/stream', method: 'POST', headers: { ...AUTH, 'content-type': OCTET } });
    let failed: string | undefined;
    req.on('error', (error) => (failed = (error as NodeJS.ErrnoException).code ?? error.message));
    let response: IncomingMessage | undefined;
    req.on('response', (res) => {
      response = res;
      res.on('error', () => undefined);
      res.pause(); // never read: the answer backs up into the service
    });
    const block = randomBytes(64 * 1024);
    // Write until the upload stalls for five seconds or the service cuts it (the service pushes
    // back for a moment, its stall interval, before it spools for a reader that does not read).
    while (written < total && !failed) {
      const more = req.write(Buffer.from(block));
      written += block.length;
      if (!more) {
        const drained = await Promise.race([new Promise((r) => req.once('drain', () => r(true))), new Promise((r) => setTimeout(() => r(false), 5000))]);
        if (!drained) break;
      }
    }
    req.destroy();
    expect(response?.statusCode).toBe(200);
    // Read on past the socket buffers, to the quota (16 MiB here), and not to the end of the upload.
    expect(written).toBeGreaterThan(16 * 1024 * 1024);
    expect(written).toBeLessThan(64 * 1024 * 1024);
    const requestId = response?.headers['x-request-id'] as string;
    expect(await waitFor(() => t.auditEvents().filter((e) => e.requestID === requestId).length === 2)).toBe(true);
    expect(t.auditEvents().filter((e) => e.requestID === requestId)[1]).toMatchObject({ additionalEventData: { stream: { phase: 'ended', outcome: 'spool-quota' } } });
    expect(await outcomes(t)).toEqual({ '/v1/encrypt/stream spool-quota': 1 });
    // A stream cut after its 200 is in http_request_duration_seconds too, once.
    const durations = (await t.metrics.registry.getSingleMetric('http_request_duration_seconds')!.get()).values;
    const count = durations.find((v) => (v as { metricName?: string }).metricName === 'http_request_duration_seconds_count' && v.labels.route === '/v1/encrypt/stream' && v.labels.status_code === '200');
    expect(count?.value).toBe(1);
    // The cut stream's spool bytes are given back to the quota.
    expect(await waitFor(() => t.metrics.streamSpoolBytesNow() === 0)).toBe(true);
  });

  it('mid-download after a whole upload (its answer spooled): the encrypt is recorded as aborted-by-client, not completed', async () => {
    const { port } = t.app.server.address() as AddressInfo;
    const requestId = await new Promise<string>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/v1/encrypt/stream', method: 'POST', headers: { ...AUTH, 'content-type': OCTET } });
      req.on('error', () => undefined);
      req.on('response', (res) => {
        res.pause();
        res.on('error', () => undefined);
        // The whole upload is in (sealed, most of its answer in the spool): read a little, then go.
        const uploaded = req.writableFinished ? Promise.resolve() : new Promise((r) => req.once('finish', r));
        void uploaded.then(() =>
          setTimeout(() => {
            let read = 0;
            res.on('data', (chunk: Buffer) => {
              read += chunk.length;
              if (read > 256 * 1024) {
                req.destroy();
                resolve(res.headers['x-request-id'] as string);
              }
            });
            res.resume();
          }, 200),
        );
      });
      req.end(randomBytes(12 * 1024 * 1024));
    });
    const eventsOf = (id: string) => t.auditEvents().filter((e) => e.requestID === id);
    expect(await waitFor(() => eventsOf(requestId).length === 2)).toBe(true);
    expect(eventsOf(requestId)[1]).toMatchObject({ additionalEventData: { stream: { phase: 'ended', outcome: 'aborted-by-client' } } });
  });

  it('no byte of a stream leaves when its started event cannot be written (503)', async () => {
    const failing = await buildTestApp({ env: { LOCAL_KEYSTORE: `${t.dir}/keystore.json` }, auditDestination: '/dev/full' });
    try {
      const response = await request(failing.app.server).post('/v1/encrypt/stream').set(AUTH).set('content-type', OCTET).send(randomBytes(200_000));
      expect(response.status).toBe(503);
      expect(response.body).toMatchObject({ code: 'AuditUnavailable' });
      expect(response.headers['content-type']).toMatch(/problem\+json/);
    } finally {
      await failing.close();
    }
  });
});
