/**
 * The decrypt stream's input goes through the stream spool while its key is unwrapped: when
 * the spool has no room (its per-principal budget, here 0 bytes: full from the start), the
 * upload cannot be held, and the answer, not yet started, is a 503 StreamSpoolFull problem the
 * client can retry, audited like every refusal.
 *
 * The KMS unwrap is held (a provider wrapper, a stand-in for a slow KMS answer) until the
 * service has stopped reading the upload, so the spool is full before the 200 could be sent.
 */
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import type { KeyProvider } from '../../src/kms/provider.js';
import { AUTH, buildTestApp, type TestApp } from '../helpers/app.js';
import { until } from '../helpers/polling.js';

const OCTET = 'application/octet-stream';

/** POSTs `body` in 64 KiB writes; the answer's status, headers and body (or the error that cut it). */
function post(t: TestApp, path: string, body: Buffer): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }> {
  const { port } = t.app.server.address() as AddressInfo;
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'POST', headers: { ...AUTH, 'content-type': OCTET } });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    void (async () => {
      for (let at = 0; at < body.length && !req.destroyed; at += 64 * 1024) {
        if (!req.write(body.subarray(at, at + 64 * 1024))) await new Promise((r) => req.once('drain', r));
      }
      req.end();
    })().catch(() => undefined);
  });
}

let sealer: TestApp | undefined;
let t: TestApp | undefined;
afterAll(async () => {
  await sealer?.close();
  await t?.close();
});

describe('a decrypt stream whose spool is full before its 200', () => {
  it('is answered 503 StreamSpoolFull, and the refusal is audited', { timeout: 90_000 }, async () => {
    // A stream ciphertext well past the spool's in-memory part (256 KiB), sealed by a service
    // with room in its spool; both use the same KMS (local-kms), so either can open it.
    sealer = await buildTestApp({ provider: 'aws' });
    await sealer.app.listen({ port: 0, host: '127.0.0.1' });
    const sealed = await post(sealer, '/v1/encrypt/stream', randomBytes(4 * 1024 * 1024));
    expect(sealed.status).toBe(200);
    await sealer.close();
    sealer = undefined;

    let release: () => void = () => undefined;
    const unwrapHeld = new Promise<void>((resolve) => (release = resolve));
    let unwrapping = false;
    t = await buildTestApp({
      provider: 'aws',
      env: { STREAM_SPOOL_MAX_BYTES_PER_PRINCIPAL: '0' },
      wrapProvider: (provider) =>
        Object.assign(Object.create(provider) as KeyProvider, {
          decryptDataKey: async (...args: Parameters<KeyProvider['decryptDataKey']>) => {
            unwrapping = true;
            await unwrapHeld;
            return provider.decryptDataKey(...args);
          },
        }),
    });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    let upload: IncomingMessage | undefined;
    t.app.server.on('request', (incoming: IncomingMessage) => (upload = incoming));

    const answer = post(t, '/v1/decrypt/stream', sealed.body);
    // The spool refused the bytes past its memory: the service stopped reading the upload (its
    // pipe into the spool is gone) while the key is still being unwrapped.
    await until(() => unwrapping && upload !== undefined && upload.listenerCount('data') === 0, 30_000);
    release();

    const { status, headers, body } = await answer;
    expect(status).toBe(503);
    expect(headers['retry-after']).toBeDefined();
    expect(JSON.parse(body.toString())).toMatchObject({ status: 503, code: 'StreamSpoolFull' });
    const requestId = headers['x-request-id'] as string;
    await until(() => t!.auditEvents().some((event) => event.requestID === requestId));
    expect(t.auditEvents().filter((event) => event.requestID === requestId)).toMatchObject([{ eventName: 'DecryptStream', httpStatus: 503, errorCode: 'StreamSpoolFull' }]);
  });
});
