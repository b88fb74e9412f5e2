/**
 * Graceful shutdown of the real process (SIGTERM, as Kubernetes and `docker stop` send it):
 * stop accepting connections, finish what is in flight, write one audit event per answered
 * request, close the audit log, exit 0. A second signal, or the end of SHUTDOWN_GRACE_MS,
 * ends a shutdown that hangs.
 *
 * The burst mixes two kinds of requests:
 * - "held" requests whose body is only half sent when SIGTERM arrives: certainly in flight
 *   inside the server (headers parsed, authenticated) and completed after the signal;
 * - a staggered burst of ordinary requests, part before and part after the signal, its last
 *   few sent once the listener is observably closed (those must all be refused).
 * An answered request is "accepted": it must be a complete 200 with a ciphertext that decrypts
 * to what was sent, and must have exactly one audit event with its request id. A request the
 * closing server refused (connection refused or reset, or Fastify's bare 503 for a request
 * that reached a closing server) is not accepted and must have no audit event.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { join } from 'node:path';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { verifyAuditLog } from '../../src/verifier/verify.js';
import { LocalAuditSigner } from '../../src/audit/signer-local.js';
import { runVerify } from '../audit/checkpoint-helpers.js';
import { AUTH, buildTestApp } from '../helpers/app.js';
import { json, send, started, type HttpOutcome } from './helpers/http.js';
import { sleep, startService, tempDir, type ServiceProcess } from './helpers/service-process.js';

const BURST = 200;
const AFTER_CLOSE = 20;
const HELD = 20;

let service: ServiceProcess | undefined;
let dir: ReturnType<typeof tempDir> | undefined;
afterEach(async () => {
  await service?.stop(2_000);
  service = undefined;
  dir?.remove();
  dir = undefined;
});

function encryptBody(i: number): string {
  return JSON.stringify({ plaintext: Buffer.from(`message ${i}`).toString('base64'), context: { test: 'shutdown' } });
}

/** Waits until the service has logged "incoming request" (debug level) for every one of `ids` (the callers' x-request-id). */
async function waitForIncoming(svc: ServiceProcess, ids: string[], timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const seen = new Set(svc.logRecords().filter((r) => r.msg === 'incoming request').map((r) => r.callerRequestId));
    if (ids.every((id) => seen.has(id))) return;
    if (Date.now() > deadline) throw new Error(`the service did not receive ${ids.filter((id) => !seen.has(id)).join(', ')}`);
    await sleep(10);
  }
}

/** Waits until a new connection is refused: the service has closed its listener. */
async function waitForListenerClosed(baseUrl: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const probe = await send(`${baseUrl}/healthz`);
    if (probe.kind === 'error' && probe.code === 'ECONNREFUSED') return;
    if (Date.now() > deadline) throw new Error('the service still accepts connections after SIGTERM');
    await sleep(10);
  }
}

/** Fastify's answer to a request that reaches a server already closing (return503OnClosing). */
function isClosingRefusal(outcome: HttpOutcome): boolean {
  return outcome.kind === 'response' && outcome.status === 503 && outcome.body.includes('"message":"Service Unavailable"');
}

describe('SIGTERM during a burst', { timeout: 60_000 }, () => {
  it('finishes in-flight requests, refuses new ones, audits exactly the answered ones, and exits 0', async () => {
    dir = tempDir();
    const keystore = join(dir.path, 'keystore.json');
    const auditLog = join(dir.path, 'audit.log');
    // debug: the "incoming request" line (debug level) tells when the held requests arrived.
    service = await startService({ LOCAL_KEYSTORE: keystore, AUDIT_LOG: auditLog, LOG_LEVEL: 'debug', SHUTDOWN_GRACE_MS: '15000' });
    const url = `${service.baseUrl}/v1/encrypt`;
    const headers = { ...AUTH };

    // Requests in flight inside the server when the signal comes.
    const heldIds = Array.from({ length: HELD }, (_, i) => `held-${i}`);
    const held = heldIds.map((id, i) =>
      started(url, { body: encryptBody(1_000 + i), headers: { ...headers, 'x-request-id': id }, hold: 10 }),
    );
    await waitForIncoming(service, heldIds);

    // The burst: BURST requests, about two a millisecond; SIGTERM a third of the way in. The
    // last AFTER_CLOSE are sent once the listener is observably closed: all must be refused.
    const burst: { i: number; outcome: Promise<HttpOutcome> }[] = [];
    for (let i = 0; i < BURST - AFTER_CLOSE; i += 1) {
      burst.push({ i, outcome: send(url, { body: encryptBody(i), headers }) });
      if (i === Math.floor(BURST / 3)) {
        // Some of the burst surely answered before the signal, the rest still on their way.
        await Promise.all(burst.slice(0, 10).map(({ outcome }) => outcome));
        service.signal('SIGTERM');
      }
      if (i % 2 === 1) await sleep(1);
    }
    await waitForListenerClosed(service.baseUrl);
    const afterClose: Promise<HttpOutcome>[] = [];
    for (let i = BURST - AFTER_CLOSE; i < BURST; i += 1) {
      const outcome = send(url, { body: encryptBody(i), headers });
      burst.push({ i, outcome });
      afterClose.push(outcome);
    }
    for (const outcome of await Promise.all(afterClose)) {
      expect(outcome.kind === 'error' ? outcome.code : `HTTP ${outcome.status}`).toBe('ECONNREFUSED');
    }
    // The held requests are still in flight: the process waits for them, then answers them in full.
    expect(service.child.exitCode, 'the process must wait for in-flight requests').toBeNull();
    const heldOutcomes = await Promise.all(held.map((request) => request.finish()));
    const burstOutcomes = await Promise.all(burst.map(async ({ i, outcome }) => ({ i, outcome: await outcome })));
    const exit = await service.exited;

    expect(exit).toEqual({ code: 0, signal: null });
    expect(service.logRecords().map((r) => r.msg)).toContain('shutdown complete');

    // Every held request was answered 200.
    for (const outcome of heldOutcomes) {
      expect(outcome.kind === 'response' ? outcome.status : outcome.code).toBe(200);
    }

    // Classify the burst.
    const accepted: { i: number; requestId: string; ciphertext: string }[] = heldOutcomes.map((outcome, k) => ({
      i: 1_000 + k,
      requestId: String(outcome.kind === 'response' ? outcome.headers['x-request-id'] : ''),
      ciphertext: json<{ ciphertext: string }>(outcome).ciphertext,
    }));
    let refused = 0;
    for (const { i, outcome } of burstOutcomes) {
      if (outcome.kind === 'error') {
        expect(['ECONNREFUSED', 'ECONNRESET', 'EPIPE']).toContain(outcome.code);
        refused += 1;
      } else if (isClosingRefusal(outcome)) {
        refused += 1;
      } else {
        expect(outcome.status, outcome.body).toBe(200);
        const body = json<{ ciphertext: string; keyId: string }>(outcome);
        expect(body.ciphertext).toMatch(/^ev1:[A-Za-z0-9_-]+$/);
        expect(body.keyId).toMatch(/^arn:aws:kms:/);
        accepted.push({ i, requestId: String(outcome.headers['x-request-id']), ciphertext: body.ciphertext });
      }
    }
    // The signal really landed mid-burst: requests before it were answered, later ones refused.
    expect(accepted.length).toBeGreaterThanOrEqual(HELD + 10);
    expect(refused).toBeGreaterThan(0);
    expect(accepted.length + refused).toBe(BURST + HELD);

    // The audit log: intact chain, one Encrypt event per accepted request and none for the rest.
    const verdict = await verifyAuditLog(auditLog);
    expect(verdict.ok, JSON.stringify(verdict)).toBe(true);
    const events = readFileSync(auditLog, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as { eventName: string; requestID: string; httpStatus: number });
    const apiEvents = events.filter((event) => event.eventName === 'Encrypt');
    expect(apiEvents).toHaveLength(accepted.length);
    expect(new Set(apiEvents.map((event) => event.requestID))).toEqual(new Set(accepted.map((a) => a.requestId)));
    expect(apiEvents.every((event) => event.httpStatus === 200)).toBe(true);
    expect(verdict.ok && verdict.events).toBe(events.length);

    // The final checkpoint, written at shutdown, signs everything before it: no unsigned tail.
    expect(events.at(-1)?.eventName).toBe('AuditCheckpoint');
    const publicKey = join(dir.path, 'audit-signing.pub.pem');
    writeFileSync(publicKey, await LocalAuditSigner.open(keystore).publicKey());
    const signed = await runVerify([`--public-key=${publicKey}`, auditLog]);
    expect(signed.err).toBe('');
    expect(signed.out).toContain('unsigned tail: none');

    // Every ciphertext is complete: it decrypts, with the same keystore, to what was sent.
    const reader = await buildTestApp({ env: { LOCAL_KEYSTORE: keystore } });
    try {
      for (let start = 0; start < accepted.length; start += 100) {
        const chunk = accepted.slice(start, start + 100);
        const response = await request(reader.app.server)
          .post('/v1/decrypt/batch')
          .set(AUTH)
          .send({ items: chunk.map((a) => ({ ciphertext: a.ciphertext, context: { test: 'shutdown' } })) });
        expect(response.status, response.text).toBe(200);
        const results = (response.body as { results: { plaintext?: string; error?: unknown }[] }).results;
        results.forEach((result, k) => {
          expect(result.error).toBeUndefined();
          expect(Buffer.from(result.plaintext!, 'base64').toString()).toBe(`message ${chunk[k]!.i}`);
        });
      }
    } finally {
      await reader.close();
    }
  });
});

describe('SIGTERM with a keep-alive client', { timeout: 60_000 }, () => {
  it('answers its in-flight request with Connection: close and exits 0 long before the idle connection would time out', async () => {
    dir = tempDir();
    const auditLog = join(dir.path, 'audit.log');
    // A grace far above the wait allowed below: exit 0 must come from the connections closing,
    // not from the grace running out (exit 1).
    service = await startService({ LOCAL_KEYSTORE: join(dir.path, 'keystore.json'), AUDIT_LOG: auditLog, LOG_LEVEL: 'debug', SHUTDOWN_GRACE_MS: '30000' });
    const url = `${service.baseUrl}/v1/encrypt`;
    const agent = new Agent({ keepAlive: true, maxSockets: 2 });
    try {
      // One connection answered and left idle, then a request on the other, in flight at SIGTERM.
      const before = await send(url, { body: encryptBody(1), headers: { ...AUTH }, agent });
      expect(before.kind === 'response' ? before.status : before.code).toBe(200);
      const inFlight = started(url, { body: encryptBody(2), headers: { ...AUTH, 'x-request-id': 'keep-alive' }, hold: 10, agent });
      await waitForIncoming(service, ['keep-alive']);
      service.signal('SIGTERM');
      const signalledAt = Date.now();
      await sleep(300);
      expect(service.child.exitCode, 'the process must wait for the in-flight request').toBeNull();

      const answer = await inFlight.finish();
      expect(answer.kind === 'response' ? answer.status : answer.code).toBe(200);
      expect(answer.kind === 'response' && answer.headers.connection).toBe('close');
      expect(await service.exited).toEqual({ code: 0, signal: null });
      // keepAliveTimeout is 72 s: without the close, the process would wait for the grace.
      expect(Date.now() - signalledAt).toBeLessThan(10_000);
      expect(service.logRecords().map((r) => r.msg)).toContain('shutdown complete');
      const events = readFileSync(auditLog, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as { eventName: string });
      expect(events.filter((event) => event.eventName === 'Encrypt')).toHaveLength(2);
      expect(events.at(-1)?.eventName).toBe('AuditCheckpoint');
    } finally {
      agent.destroy();
    }
  });
});

describe('a shutdown that hangs', { timeout: 60_000 }, () => {
  /** Starts the service, holds one request in flight, sends SIGTERM; returns when it was sent. */
  async function startWithHeldRequest(graceMs: number): Promise<number> {
    dir = tempDir();
    service = await startService({
      LOCAL_KEYSTORE: join(dir.path, 'keystore.json'),
      AUDIT_LOG: join(dir.path, 'audit.log'),
      LOG_LEVEL: 'debug', // for the "incoming request" line
      SHUTDOWN_GRACE_MS: String(graceMs),
    });
    // A request whose body never completes keeps Fastify's close() waiting.
    started(`${service.baseUrl}/v1/encrypt`, { body: encryptBody(0), headers: { ...AUTH, 'x-request-id': 'stuck' }, hold: 5 });
    await waitForIncoming(service, ['stuck']);
    service.signal('SIGTERM');
    return Date.now();
  }

  it('a second signal exits at once, with code 1', async () => {
    await startWithHeldRequest(20_000);
    await sleep(300);
    expect(service!.child.exitCode, 'still waiting for the in-flight request').toBeNull();
    const before = Date.now();
    service!.signal('SIGTERM');
    const exit = await service!.exited;
    expect(exit.code).toBe(1);
    expect(Date.now() - before).toBeLessThan(3_000);
    expect(service!.logRecords().some((r) => String(r.msg).includes('second SIGTERM'))).toBe(true);
  });

  it('SHUTDOWN_GRACE_MS bounds the wait: exit code 1 when it runs out', async () => {
    const signalledAt = await startWithHeldRequest(1_000);
    const exit = await service!.exited;
    expect(exit.code).toBe(1);
    expect(Date.now() - signalledAt).toBeGreaterThanOrEqual(900);
    expect(Date.now() - signalledAt).toBeLessThan(5_000);
    expect(service!.logRecords().some((r) => String(r.msg).includes('killed by timeout (1000ms)'))).toBe(true);
  });
});
