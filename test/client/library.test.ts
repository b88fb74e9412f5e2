/**
 * The client library's promises: typed problems, retries only where they are safe (429 honouring
 * Retry-After from the real service; a connection reset from a socket that is not a service,
 * the one mock here: no real peer resets a request on demand), timeouts, AbortSignal, batch
 * helpers, and stream readables that error, never end, when the service cuts a stream.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientTimeoutError, EnvelopeClient, EnvelopeProblem, StreamCutError } from '../../src/client/index.js';
import { parseStreamHeader } from '../../src/format/stream-format.js';
import { DEV_TOKEN } from '../helpers/app.js';
import { clientFor, listeningApp, type ListeningApp } from './helpers.js';

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const hello = Buffer.from('hello').toString('base64');

describe('the client library against the service', () => {
  let app: ListeningApp;
  let client: EnvelopeClient;
  beforeAll(async () => {
    app = await listeningApp();
    client = clientFor(app);
  });
  afterAll(async () => app?.close());

  it('a refusal is an EnvelopeProblem with the service\'s code, status and request id', async () => {
    const error = await client.decrypt({ ciphertext: 'ev1:AAAA' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EnvelopeProblem);
    expect(error).toMatchObject({ status: 422, code: 'MalformedCiphertext' });
    expect((error as EnvelopeProblem).requestId).toMatch(/^[0-9a-f-]{36}$/);
    const denied = await new EnvelopeClient({ baseUrl: app.url, token: 'wrong' }).keys().catch((e: unknown) => e);
    expect(denied).toMatchObject({ status: 401, code: 'Unauthenticated' });
  });

  it('batch helpers split any number of items into batches and keep the order', async () => {
    const items = Array.from({ length: 7 }, (_, i) => ({ plaintext: Buffer.from(`item ${i}`).toString('base64') }));
    const sealed = await client.encryptMany(items, { batchSize: 3 });
    expect(sealed).toHaveLength(7);
    const opened = await client.decryptMany(sealed.map((result) => ({ ciphertext: (result as { ciphertext: string }).ciphertext })), { batchSize: 3 });
    expect(opened.map((result) => Buffer.from((result as { plaintext: string }).plaintext, 'base64').toString())).toEqual(items.map((_, i) => `item ${i}`));
    const auditBatches = app.auditEvents().filter((event) => event.eventName === 'EncryptBatch');
    expect(auditBatches.slice(-3).map((event) => (event.requestParameters as { items: number }).items)).toEqual([3, 3, 1]);
  });

  it('binary operations carry key, context and the answer headers', async () => {
    const sealed = await client.encryptBinary(Buffer.from('binary'), { context: { tenant: 'a b&c' } });
    expect(sealed.keyId).toMatch(/^arn:/);
    const opened = await client.decryptBinary(sealed.bytes);
    expect(opened.bytes.toString()).toBe('binary');
    expect(opened.context).toEqual({ tenant: 'a b&c' });
  });

  it('an AbortSignal ends a call at once', async () => {
    const controller = new AbortController();
    controller.abort(new Error('caller gave up'));
    await expect(client.encrypt({ plaintext: hello }, { signal: controller.signal })).rejects.toThrow('caller gave up');
  });

  it('decryptStream errors with StreamCutError, never ends, when the service cuts the stream at a bad segment', async () => {
    const sealed = await collect(client.encryptStream(Readable.from([Buffer.alloc(5 * 65536, 1)])));
    const changed = Buffer.from(sealed);
    changed[parseStreamHeader(changed).length + 3 * (65536 + 16) + 5]! ^= 1;
    const opened = client.decryptStream(Readable.from([changed]));
    let ended = false;
    opened.on('end', () => (ended = true));
    const error = await collect(opened).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StreamCutError);
    expect(ended).toBe(false);
  });

  it('a stream refused before its 200 is the service\'s problem', async () => {
    const refused = client.encryptStream(Readable.from([Buffer.from('x')]), { context: { '': 'empty key' } });
    await expect(collect(refused)).rejects.toMatchObject({ status: 400 });
  });
});

describe('retries', () => {
  it('a 429 is retried after its Retry-After (the real rate limit), and returned once attempts run out', async () => {
    const app = await listeningApp({ env: { RATE_LIMIT_MAX: '1', RATE_LIMIT_WINDOW_MS: '3000' } });
    try {
      const patient = new EnvelopeClient({ baseUrl: app.url, token: DEV_TOKEN, retry: { maxAttempts: 3, maxDelayMs: 5000 } });
      const impatient = new EnvelopeClient({ baseUrl: app.url, token: DEV_TOKEN, retry: { maxAttempts: 1 } });
      await impatient.encrypt({ plaintext: hello });
      const refused = await impatient.encrypt({ plaintext: hello }).catch((e: unknown) => e);
      expect(refused).toMatchObject({ status: 429, code: 'RateLimited' });
      const retryAfter = (refused as EnvelopeProblem).retryAfterSeconds!;
      expect(retryAfter).toBeGreaterThan(0);
      const started = Date.now();
      await expect(patient.encrypt({ plaintext: hello })).resolves.toMatchObject({ ciphertext: expect.stringMatching(/^ev1:/) });
      // It waited for the window to reopen rather than hammering the service.
      expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    } finally {
      await app.close();
    }
  }, 30_000);

  describe('an unknown outcome (the connection reset mid-request: a socket, not the service)', () => {
    let server: Server;
    let url: string;
    let connections = 0;
    beforeAll(async () => {
      server = createServer((socket: Socket) => {
        connections++;
        socket.once('data', () => socket.resetAndDestroy());
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const client = () => new EnvelopeClient({ baseUrl: url, token: 'x', retry: { maxAttempts: 3, baseDelayMs: 1 } });

    it('is never retried for encrypt (a second ciphertext), datakey or rewrap', async () => {
      for (const call of [() => client().encrypt({ plaintext: hello }), () => client().dataKey({}), () => client().rewrap({ ciphertext: 'ev1:AAAA' })]) {
        connections = 0;
        await expect(call()).rejects.toThrow();
        expect(connections).toBe(1);
      }
    });

    it('is retried for decrypt and unwrap, which are safe to repeat', async () => {
      for (const call of [() => client().decrypt({ ciphertext: 'ev1:AAAA' }), () => client().unwrap({ keyId: 'k', wrappedKey: 'AAAA' })]) {
        connections = 0;
        await expect(call()).rejects.toThrow();
        expect(connections).toBe(3);
      }
    });
  });

  it('a silent service times out (ClientTimeoutError) instead of hanging', async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const client = new EnvelopeClient({ baseUrl: `http://127.0.0.1:${(silent.address() as { port: number }).port}`, token: 'x', timeoutMs: 300 });
      await expect(client.encrypt({ plaintext: hello })).rejects.toBeInstanceOf(ClientTimeoutError);
    } finally {
      silent.close();
    }
  });
});
