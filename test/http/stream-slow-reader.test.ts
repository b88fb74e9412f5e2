/**
 * A full-duplex client that reads its answer while it sends, but slower than it sends, is
 * pushed back on (its upload slows to its reading), not spooled for: through both stream
 * routes it moves six times the spool's quota (16 MiB here) and completes, with the spool left
 * (almost) unused. A spool that took every write would fill its quota with the difference
 * between the two rates and cut the stream (spool-quota).
 *
 * The quota is above what the kernel buffers of the upload hold (a few MiB each side on
 * loopback): a machine busy enough to pause this process for the stall interval may make the
 * service take a stalled reader's spill once, and that spill is those buffers.
 *
 * The reader is slower by construction: it pauses the response after every chunk and resumes
 * it on a timer, while the writer writes as fast as the socket takes its bytes. Nothing here
 * depends on how fast the machine is: only outcomes and byte counts are asserted.
 */
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTH, buildTestApp, type TestApp } from '../helpers/app.js';
import { until } from '../helpers/polling.js';

const MiB = 1024 * 1024;
const QUOTA = 16 * MiB;
const SIZE = 96 * MiB;

interface Answer {
  status: number;
  body: Buffer;
  complete: boolean;
  error?: string;
}

/** POSTs `body` in 64 KiB writes as fast as the socket takes them, reading the answer with a pause after every chunk. */
function slowReaderPost(t: TestApp, path: string, body: Buffer): Promise<Answer> {
  const { port } = t.app.server.address() as AddressInfo;
  return new Promise((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'POST', headers: { ...AUTH, 'content-type': 'application/octet-stream' } });
    let error: string | undefined;
    req.on('error', (e: NodeJS.ErrnoException) => {
      error ??= e.code ?? e.message;
      resolve({ status: 0, body: Buffer.alloc(0), complete: false, error });
    });
    req.on('response', (res) => {
      const received: Buffer[] = [];
      res.on('data', (chunk: Buffer) => {
        received.push(chunk);
        res.pause();
        setTimeout(() => res.resume(), 1);
      });
      res.on('error', (e: NodeJS.ErrnoException) => (error ??= e.code ?? e.message));
      res.on('close', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(received), complete: res.complete, ...(error ? { error } : {}) }));
    });
    void (async () => {
      for (let at = 0; at < body.length && !req.destroyed; at += 64 * 1024) {
        if (!req.write(body.subarray(at, at + 64 * 1024))) await new Promise((r) => req.once('drain', r));
      }
      req.end();
    })().catch(() => undefined);
  });
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe(`a full-duplex client reading slower than it sends (${SIZE / MiB} MiB each way, spool quota ${QUOTA / MiB} MiB)`, () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({ env: { STREAM_SPOOL_MAX_BYTES_PER_PRINCIPAL: String(QUOTA), STREAM_SPOOL_MAX_BYTES: String(QUOTA) } });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => t?.close());

  it('encrypts and decrypts to the same bytes, both streams completed, the spool (almost) unused', { timeout: 240_000 }, async () => {
    const plaintext = randomBytes(SIZE);
    const spooled = async () => (await t.metrics.registry.getSingleMetric('stream_spooled_bytes_total')!.get()).values[0]?.value ?? 0;
    const sealed = await slowReaderPost(t, '/v1/encrypt/stream', plaintext);
    expect(sealed.error, `encrypt cut; spooled ${await spooled()} bytes`).toBeUndefined();
    expect(sealed).toMatchObject({ status: 200, complete: true });
    expect(sealed.body.length).toBeGreaterThan(SIZE);

    const opened = await slowReaderPost(t, '/v1/decrypt/stream', sealed.body);
    expect(opened.error, `decrypt cut; spooled ${await spooled()} bytes`).toBeUndefined();
    expect(opened).toMatchObject({ status: 200, complete: true });
    expect(opened.body.length).toBe(SIZE);
    expect(sha256(opened.body)).toBe(sha256(plaintext));

    const outcomes = (await t.metrics.registry.getSingleMetric('stream_outcomes_total')!.get()).values;
    expect(Object.fromEntries(outcomes.map((v) => [`${String(v.labels.route)} ${String(v.labels.outcome)}`, v.value]))).toEqual({
      '/v1/encrypt/stream completed': 1,
      '/v1/decrypt/stream completed': 1,
    });
    // Pushed back on, not spooled for: at most a stall's worth (a machine that froze the
    // reader for a moment), far below the 2 × 96 MiB that went through.
    expect(await spooled()).toBeLessThan(QUOTA);
    await until(() => t.metrics.streamSpoolBytesNow() === 0);
  });
});
