/**
 * Case 7, streams: one large stream at a time through POST /v1/encrypt/stream and
 * /v1/decrypt/stream, against the bare streaming route (the same Fastify stack piping the body
 * back, no crypto: the transport's limit), a plain node:http server piping the body back (the
 * floor under Fastify) and raw AES-256-GCM in-process over the same bytes,
 * with the server's resident memory sampled during each transfer against its idle value.
 * Two sizes an order of magnitude apart show whether memory depends on the stream's size.
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync, rmSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BENCH_CONTEXT, MiB } from '../lib/constants.js';
import { wants, type RunContext } from '../lib/context.js';
import { processCpuTimes, type CpuTimes } from '../lib/cpu.js';
import { round } from '../lib/load.js';
import type { StreamCase } from '../lib/results.js';
import { startBare, startService } from '../lib/services.js';
import { formatContextHeader } from '../../src/http/schemas/binary-headers.js';

/**
 * Two sizes an order of magnitude apart. Full run: 256 MiB and 2.5 GiB; smoke: 4 and 40 MiB;
 * BENCH_STREAM_MIB=64,640 chooses others (a short run on a busy machine).
 */
export function streamSizes(mode: 'full' | 'smoke'): { key: string; bytes: number; label: string }[] {
  const chosen = process.env.BENCH_STREAM_MIB?.split(',').map(Number);
  if (chosen?.length === 2 && chosen.every((mib) => Number.isFinite(mib) && mib > 0)) {
    return (['small', 'large'] as const).map((key, i) => ({ key, bytes: chosen[i]! * MiB, label: `${chosen[i]} MiB` }));
  }
  return mode === 'full'
    ? [
        { key: 'small', bytes: 256 * MiB, label: '256 MiB' },
        { key: 'large', bytes: 2560 * MiB, label: '2.5 GiB' },
      ]
    : [
        { key: 'small', bytes: 4 * MiB, label: '4 MiB' },
        { key: 'large', bytes: 40 * MiB, label: '40 MiB' },
      ];
}

export function streamCaseIds(): string[] {
  const ids: string[] = [];
  for (const size of streamSizes('smoke')) ids.push(`stream.node.${size.key}`, `stream.bare.${size.key}`, `stream.enc.${size.key}`, `stream.dec.${size.key}`, `stream.raw.${size.key}`);
  return ids;
}

const CHUNK = 64 * 1024;

/** `bytes` of plaintext from one random 64 KiB block, produced as fast as it is read. */
function plaintextStream(bytes: number): Readable {
  const block = randomBytes(CHUNK);
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= bytes) return this.push(null);
      const n = Math.min(CHUNK, bytes - sent);
      sent += n;
      // A copy: the service zeroes the chunks it consumed, the client must not care.
      this.push(Buffer.from(block.subarray(0, n)));
    },
  });
}

function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

interface Transfer {
  seconds: number;
  bytesOut: number;
  peakRss: number;
  /** CPU seconds of the server process and of this process (the client) during the transfer. */
  serverCpuSeconds?: number;
  clientCpuSeconds: number;
}

function cpuSeconds(times: CpuTimes | undefined): number | undefined {
  return times && times.userSeconds + times.systemSeconds;
}

/** One streamed request, chunked upload; the response goes to `sink` (or is counted and dropped). */
async function transfer(url: string, headers: Record<string, string>, body: Readable, pid: number, sinkFile?: string): Promise<Transfer> {
  let peakRss = rssBytes(pid);
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssBytes(pid))), 25);
  const started = performance.now();
  const serverCpuBefore = cpuSeconds(processCpuTimes(pid));
  const clientCpuBefore = process.cpuUsage();
  try {
    const target = new URL(url);
    const req = request({ host: target.hostname, port: target.port, path: target.pathname, method: 'POST', headers: { ...headers, 'content-type': 'application/octet-stream' } });
    const response = new Promise<IncomingMessage>((resolve, reject) => {
      req.once('response', resolve);
      req.once('error', reject);
    });
    const upload = pipeline(body, req);
    const res = await response;
    if (res.statusCode !== 200) throw new Error(`${url}: HTTP ${res.statusCode}`);
    let bytesOut = 0;
    res.on('data', (chunk: Buffer) => (bytesOut += chunk.length));
    if (sinkFile) await pipeline(res, createWriteStream(sinkFile));
    else await new Promise<void>((resolve, reject) => res.on('end', resolve).on('error', reject).resume());
    if (!res.complete) throw new Error(`${url}: the response did not end cleanly`);
    await upload;
    const seconds = (performance.now() - started) / 1000;
    const serverCpuAfter = cpuSeconds(processCpuTimes(pid));
    const client = process.cpuUsage(clientCpuBefore);
    return {
      seconds,
      bytesOut,
      peakRss: Math.max(peakRss, rssBytes(pid)),
      ...(serverCpuBefore !== undefined && serverCpuAfter !== undefined ? { serverCpuSeconds: serverCpuAfter - serverCpuBefore } : {}),
      clientCpuSeconds: (client.user + client.system) / 1e6,
    };
  } finally {
    clearInterval(sampler);
  }
}

function rawAesMbPerSecond(bytes: number): { mbPerSecond: number; seconds: number } {
  const key = randomBytes(32);
  const block = randomBytes(CHUNK);
  const started = performance.now();
  // The same work per 64 KiB segment as the service: a cipher, the segment, the tag.
  for (let done = 0, i = 0; done < bytes; done += CHUNK, i++) {
    const nonce = Buffer.alloc(12);
    nonce.writeUInt32BE(i, 7);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.update(block.subarray(0, Math.min(CHUNK, bytes - done)));
    cipher.final();
    cipher.getAuthTag();
  }
  const seconds = (performance.now() - started) / 1000;
  // Seconds unrounded: a small smoke-mode size takes milliseconds, and 1 / 0 is not a rate.
  return { mbPerSecond: round(bytes / 1e6 / seconds, 1), seconds };
}

export async function runStreamCases(ctx: RunContext): Promise<void> {
  if (!wants(ctx, 'stream')) return;
  const sizes = streamSizes(ctx.settings.mode);
  const service = await startService(ctx, 'service-stream', 'full', { env: { REQUEST_TIMEOUT_MS: '600000', STREAM_MAX_BYTES: String(64 * 1024 * MiB) } });
  const bare = await startBare(ctx, 'bare-stream');
  const nodePipe = await startBare(ctx, 'node-pipe');
  const headers = { ...service.auth, 'x-envelope-context': formatContextHeader(Object.entries(BENCH_CONTEXT)) };
  const record = (id: string, label: string, bytes: number, server: string, path: string, t: Transfer, idleRss: number) => {
    const result: StreamCase = {
      kind: 'stream',
      label,
      payloadBytes: bytes,
      server,
      path,
      seconds: round(t.seconds, 2),
      mbPerSecond: round(bytes / 1e6 / t.seconds, 1),
      idleRssMiB: round(idleRss / MiB, 1),
      peakRssMiB: round(t.peakRss / MiB, 1),
      rssGrowthMiB: round((t.peakRss - idleRss) / MiB, 1),
      ...(t.serverCpuSeconds !== undefined
        ? {
            serverCpuSeconds: round(t.serverCpuSeconds, 2),
            clientCpuSeconds: round(t.clientCpuSeconds, 2),
            coresBusy: round((t.serverCpuSeconds + t.clientCpuSeconds) / t.seconds, 2),
          }
        : {}),
    };
    ctx.cases[id] = result;
    const cpu = result.coresBusy === undefined ? '' : `, CPU s server ${result.serverCpuSeconds} + client ${result.clientCpuSeconds} = ${result.coresBusy} cores busy`;
    ctx.log(`    ${label}: ${result.mbPerSecond} MB/s, RSS ${result.idleRssMiB} -> ${result.peakRssMiB} MiB (+${result.rssGrowthMiB})${cpu}`);
  };
  try {
    // Warm both servers (JIT, first data key) before idle memory is read.
    await transfer(`${nodePipe.url}/stream`, {}, plaintextStream(8 * MiB), nodePipe.pid);
    await transfer(`${bare.url}/stream`, {}, plaintextStream(8 * MiB), bare.pid);
    await transfer(`${service.server.url}/v1/encrypt/stream`, headers, plaintextStream(8 * MiB), service.server.pid);
    for (const size of sizes) {
      const cipherFile = join(ctx.workDir, `stream-${size.key}.es2`);
      const nodeIdle = rssBytes(nodePipe.pid);
      record(`stream.node.${size.key}`, `plain node:http server (pipe back), ${size.label}`, size.bytes, 'node-pipe', '/stream', await transfer(`${nodePipe.url}/stream`, {}, plaintextStream(size.bytes), nodePipe.pid), nodeIdle);
      const bareIdle = rssBytes(bare.pid);
      record(`stream.bare.${size.key}`, `bare streaming route (pipe back), ${size.label}`, size.bytes, 'bare-stream', '/stream', await transfer(`${bare.url}/stream`, {}, plaintextStream(size.bytes), bare.pid), bareIdle);
      const encIdle = rssBytes(service.server.pid);
      record(
        `stream.enc.${size.key}`,
        `service /v1/encrypt/stream, ${size.label}`,
        size.bytes,
        'service-stream',
        '/v1/encrypt/stream',
        await transfer(`${service.server.url}/v1/encrypt/stream`, headers, plaintextStream(size.bytes), service.server.pid),
        encIdle,
      );
      // The ciphertext for the decrypt case, written to disk outside the measured pass (the
      // measured encrypt drops its answer, as the bare route's is dropped).
      await transfer(`${service.server.url}/v1/encrypt/stream`, headers, plaintextStream(size.bytes), service.server.pid, cipherFile);
      const decIdle = rssBytes(service.server.pid);
      record(
        `stream.dec.${size.key}`,
        `service /v1/decrypt/stream, ${size.label}`,
        size.bytes,
        'service-stream',
        '/v1/decrypt/stream',
        await transfer(`${service.server.url}/v1/decrypt/stream`, service.auth, createReadStream(cipherFile, { highWaterMark: CHUNK }), service.server.pid),
        decIdle,
      );
      rmSync(cipherFile, { force: true });
      const raw = rawAesMbPerSecond(size.bytes);
      ctx.cases[`stream.raw.${size.key}`] = { kind: 'ops', label: `raw node:crypto AES-256-GCM in-process, 64 KiB segments, ${size.label}`, payloadBytes: size.bytes, opsPerSecond: round(1 / raw.seconds, 3), ops: 1, meanUs: round(raw.seconds * 1e6, 2), mbPerSecond: raw.mbPerSecond };
      ctx.log(`    raw AES-256-GCM, ${size.label}: ${raw.mbPerSecond} MB/s`);
    }
  } finally {
    await service.server.stop();
    await bare.stop();
    await nodePipe.stop();
  }
}
