/**
 * A hostile tenant against one replica's memory, on the real process started with the settings
 * docs/OPERATIONS.md recommends for a 512 MiB container (NODE_OPTIONS=--max-old-space-size=256,
 * MEMORY_LIMIT_BYTES=512 MiB, every other memory setting at its default).
 *
 * One principal with an encrypt grant opens 60 connections, each sending 8 MiB − 1 byte of a
 * /v1/encrypt/binary body slowly. Meanwhile another principal keeps sending small encrypts and
 * /readyz is polled. What a user relies on:
 * - the other principal is served throughout (503 for at most a few seconds, and then /readyz
 *   said so too);
 * - the flooder is refused (429) once its request-buffer budget is used, and every refusal is
 *   in the audit log, as its own event or counted in a summary;
 * - after the flood every principal gets 200 within 10 s;
 * - the child's peak resident memory (VmHWM) stays well inside the container.
 * A principal with no grant at all doing the same gets 403 for each, before its body is read.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, type HttpOutcome } from './helpers/http.js';
import { sleep, startService, tempDir, type ServiceProcess } from './helpers/service-process.js';

const MiB = 1024 * 1024;
const CONTAINER_BYTES = 512 * MiB;
const FLOOD_CONNECTIONS = 60;
const FLOOD_BODY_BYTES = 8 * MiB - 1;
const CHUNK_BYTES = 256 * 1024;
const CHUNK_EVERY_MS = 100;

const FLOODER = 'memory-flood-token-flooder-5e1a';
const VICTIM = 'memory-flood-token-victim-0c77';
/** Authenticates, and no rule grants it anything: the reviewer's hostile tenant. */
const OUTSIDER = 'memory-flood-token-outsider-93d2';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

const POLICY = [
  'version: 1',
  'authentication:',
  '  apiKeys:',
  `    - { name: flooder, sha256: "${sha256(FLOODER)}" }`,
  `    - { name: victim, sha256: "${sha256(VICTIM)}" }`,
  `    - { name: outsider, sha256: "${sha256(OUTSIDER)}" }`,
  'rules:',
  '  - id: encrypt-default',
  '    principals: [flooder, victim]',
  '    operations: [encrypt]',
  '    keys: [alias/default]',
  '',
].join('\n');

let service: ServiceProcess;
let dir: ReturnType<typeof tempDir>;

beforeAll(async () => {
  dir = tempDir();
  const policyFile = join(dir.path, 'policy.yaml');
  writeFileSync(policyFile, POLICY);
  service = await startService({
    LOCAL_KEYSTORE: join(dir.path, 'keystore.json'),
    AUDIT_LOG: join(dir.path, 'audit.log'),
    POLICY_FILE: policyFile,
    LOG_LEVEL: 'info',
    // The recommended settings for a 512 MiB container (docs/OPERATIONS.md).
    NODE_OPTIONS: '--max-old-space-size=256',
    MEMORY_LIMIT_BYTES: String(CONTAINER_BYTES),
  });
});
afterAll(async () => {
  await service?.stop();
  dir?.remove();
});

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

function smallEncrypt(token: string): Promise<HttpOutcome> {
  return send(`${service.baseUrl}/v1/encrypt`, {
    headers: bearer(token),
    body: JSON.stringify({ plaintext: Buffer.from('still here').toString('base64') }),
    timeoutMs: 10_000,
  });
}

/** Sends `bytes` of a binary encrypt body, one chunk every CHUNK_EVERY_MS, until answered or done. */
function slowUpload(token: string, bytes: number): Promise<HttpOutcome> {
  return new Promise((done) => {
    const request = httpRequest(`${service.baseUrl}/v1/encrypt/binary`, {
      method: 'POST',
      agent: false,
      headers: { ...bearer(token), connection: 'close', 'content-type': 'application/octet-stream', 'content-length': String(bytes) },
      timeout: 45_000,
    });
    let sent = 0;
    let answered = false;
    const chunk = Buffer.alloc(CHUNK_BYTES, 0x61);
    const timer = setInterval(() => {
      if (answered || request.destroyed) return clearInterval(timer);
      const size = Math.min(CHUNK_BYTES, bytes - sent);
      sent += size;
      if (sent >= bytes) {
        clearInterval(timer);
        request.end(chunk.subarray(0, size));
      } else {
        request.write(chunk.subarray(0, size));
      }
    }, CHUNK_EVERY_MS);
    const finish = (outcome: HttpOutcome) => {
      answered = true;
      clearInterval(timer);
      done(outcome);
    };
    request.on('response', (response) => {
      answered = true; // answered early (refused): send no more
      const chunks: Buffer[] = [];
      response.on('data', (data: Buffer) => chunks.push(data));
      response.on('end', () => finish({ kind: 'response', status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', (error: NodeJS.ErrnoException) => finish({ kind: 'error', code: error.code ?? 'ERR', message: error.message }));
    });
    request.on('timeout', () => request.destroy(Object.assign(new Error('client timeout'), { code: 'CLIENT_TIMEOUT' })));
    request.on('error', (error: NodeJS.ErrnoException) => finish({ kind: 'error', code: error.code ?? 'ERR', message: error.message }));
  });
}

function peakRssBytes(pid: number): number {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match?.[1]) throw new Error('no VmHWM in /proc/<pid>/status');
  return Number(match[1]) * 1024;
}

const statusOf = (outcome: HttpOutcome) => (outcome.kind === 'response' ? outcome.status : outcome.code);
const codeOf = (outcome: HttpOutcome) => {
  if (outcome.kind !== 'response') return outcome.code;
  try {
    return String((JSON.parse(outcome.body) as { code?: string }).code ?? outcome.status);
  } catch {
    return String(outcome.status);
  }
};

describe.skipIf(process.platform !== 'linux')('one principal floods a replica with slow 8 MiB bodies (512 MiB container settings)', () => {
  it('a principal with no grant gets 403 for each of its 60 slow uploads before the body is read', { timeout: 30_000 }, async () => {
    const started = Date.now();
    const flood = await Promise.all(Array.from({ length: FLOOD_CONNECTIONS }, () => slowUpload(OUTSIDER, FLOOD_BODY_BYTES)));
    const floodMs = Date.now() - started;
    const codes = flood.map(codeOf);
    console.log(`no-grant flood: ${floodMs} ms, answers ${JSON.stringify([...new Set(codes)])}`);
    expect(codes.every((code) => code === 'AccessDenied')).toBe(true);
    // Answered on the headers: far sooner than one 8 MiB body takes to send.
    expect(floodMs).toBeLessThan(((FLOOD_BODY_BYTES / CHUNK_BYTES) * CHUNK_EVERY_MS) / 2);
    expect(statusOf(await smallEncrypt(VICTIM))).toBe(200);
  });

  it('the others stay served, the flood is refused and audited, and the replica recovers by itself', { timeout: 60_000 }, async () => {
    const pid = service.child.pid!;
    expect(statusOf(await smallEncrypt(VICTIM))).toBe(200);

    let flooding = true;
    const victim: { at: number; status: number | string; code: string }[] = [];
    const ready: { at: number; status: number | string }[] = [];
    const observe = (async () => {
      while (flooding) {
        const [served, readiness] = await Promise.all([smallEncrypt(VICTIM), send(`${service.baseUrl}/readyz`, { timeoutMs: 10_000 })]);
        const at = Date.now();
        victim.push({ at, status: statusOf(served), code: codeOf(served) });
        ready.push({ at, status: statusOf(readiness) });
        await sleep(250);
      }
    })();

    const started = Date.now();
    const flood = await Promise.all(Array.from({ length: FLOOD_CONNECTIONS }, () => slowUpload(FLOODER, FLOOD_BODY_BYTES)));
    flooding = false;
    await observe;
    const floodMs = Date.now() - started;

    // After the flood: every principal gets 200 within 10 s.
    const recoveredBy = Date.now() + 10_000;
    const recovered = { victim: 0 as number | string, flooder: 0 as number | string, readyz: 0 as number | string };
    while (Date.now() < recoveredBy) {
      recovered.victim = statusOf(await smallEncrypt(VICTIM));
      recovered.flooder = statusOf(await smallEncrypt(FLOODER));
      recovered.readyz = statusOf(await send(`${service.baseUrl}/readyz`));
      if (recovered.victim === 200 && recovered.flooder === 200 && recovered.readyz === 200) break;
      await sleep(250);
    }
    const peak = peakRssBytes(pid);

    const floodCodes: Record<string, number> = {};
    for (const outcome of flood) floodCodes[codeOf(outcome)] = (floodCodes[codeOf(outcome)] ?? 0) + 1;
    const victimFailures = victim.filter((sample) => sample.status !== 200);
    const shedSpanMs = victimFailures.length === 0 ? 0 : victimFailures.at(-1)!.at - victimFailures[0]!.at;
    console.log(
      `memory flood: peak RSS (VmHWM) ${(peak / MiB).toFixed(0)} MiB; flood ${floodMs} ms, flood answers ${JSON.stringify(floodCodes)}; ` +
        `victim ${victim.length} requests, ${victimFailures.length} not 200 (${JSON.stringify(victimFailures.map((f) => f.code))}); ` +
        `readyz 503 in ${ready.filter((r) => r.status === 503).length} of ${ready.length} polls`,
    );

    expect(recovered).toEqual({ victim: 200, flooder: 200, readyz: 200 });
    // The other principal is served during the flood; a 503 only while shedding, for a few seconds.
    expect(victim.length).toBeGreaterThan(5);
    for (const failure of victimFailures) expect(failure.code).toBe('Overloaded');
    expect(shedSpanMs).toBeLessThanOrEqual(5_000);
    if (victimFailures.length > 0) expect(ready.some((sample) => sample.status === 503), '/readyz never reflected the shedding').toBe(true);
    // The flooder is refused once its buffer budget is used, long before 60 × 8 MiB are held.
    expect(floodCodes.TooMuchBuffered ?? 0).toBeGreaterThan(0);
    expect(peak).toBeLessThan(0.75 * CONTAINER_BYTES);

    // Every refusal is in the audit log: its own event, or counted in a summary (written at the
    // window's end or at shutdown).
    await service.stop();
    const events = readFileSync(join(dir.path, 'audit.log'), 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, any>);
    const own = events.filter((event) => event.errorCode === 'TooMuchBuffered' && event.userIdentity?.principalId === 'flooder').length;
    const summarized = events
      .filter((event) => event.eventName === 'RefusalsSummarized' && event.serviceEventDetails?.principalId === 'flooder')
      .reduce((sum, event) => sum + (event.serviceEventDetails.byCode?.TooMuchBuffered ?? 0), 0);
    // A refused upload's client may see its connection cut while it still writes instead of
    // the 429 (the service closes after answering): it is refused and audited all the same.
    const served = floodCodes['200'] ?? 0;
    const cutWhileSending = flood.filter((outcome) => outcome.kind === 'error').length;
    expect(served + (floodCodes.TooMuchBuffered ?? 0) + cutWhileSending).toBe(FLOOD_CONNECTIONS);
    expect(own + summarized).toBe(FLOOD_CONNECTIONS - served);
  });
});
