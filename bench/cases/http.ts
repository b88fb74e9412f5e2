/**
 * HTTP cases, each server a child process driven by autocannon from the runner:
 *   1. (a) bare echo, (b) bare AES-256-GCM, (c) this service, encrypt and decrypt, 1 KiB and
 *      64 KiB;
 *   4. large payloads (1 MiB and the largest body BODY_LIMIT_BYTES allows), the same three,
 *      plus (b) over application/octet-stream, driven by a plain node:http client
 *      (lib/stream-load.ts explains why not autocannon);
 *   5. the 1 KiB encrypt through each layer variant of the service.
 */
import { BENCH_CONTEXT } from '../lib/constants.js';
import { formatContextHeader } from '../../src/http/schemas/binary-headers.js';
import { decryptBody, encryptBody, largestPlaintextFor, plaintextOf } from '../lib/bodies.js';
import { skip, wants, type RunContext } from '../lib/context.js';
import { cpuSplit, pin } from '../lib/cpu-affinity.js';
import { measureHttp, round, type HttpMeasurement } from '../lib/load.js';
import { measureHttpStreaming } from '../lib/stream-load.js';
import { HTTP_SIZES, largeSizes, type Sizes } from '../lib/sizes.js';
import { runRawCryptoCases } from './raw-crypto.js';
import type { ServerProcess } from '../lib/server-process.js';
import { startTraceSink, type TraceSink } from '../lib/trace-sink.js';
import {
  VARIANT_LABELS,
  postJson,
  startBare,
  startService,
  variantUsesLocalKms,
  variantUsesTracing,
  withServer,
  type RunningService,
  type ServiceVariant,
} from '../lib/services.js';

interface Payloads {
  size: Sizes;
  plaintext: Buffer;
  encrypt: string;
}

function payloads(sizes: Sizes[]): Payloads[] {
  return sizes.map((size) => {
    const plaintext = plaintextOf(size.bytes);
    return { size, plaintext, encrypt: encryptBody(plaintext) };
  });
}

async function measure(
  ctx: RunContext,
  server: ServerProcess,
  id: string,
  label: string,
  path: string,
  body: string | Buffer,
  payloadBytes: number,
  options: { headers?: Record<string, string>; connections?: number; contentType?: string; client?: 'autocannon' | 'streaming' } = {},
): Promise<void> {
  if (ctx.skipCases.has(id)) {
    ctx.log(`  ${id}: left out (--skip)`);
    return;
  }
  ctx.log(`  ${id}: ${label}`);
  pinForHttp(ctx, server.pid);
  const client = options.client === 'streaming' ? measureHttpStreaming : measureHttp;
  const result = await client({
    url: `${server.url}${path}`,
    headers: { 'content-type': options.contentType ?? 'application/json', ...options.headers },
    body,
    connections: options.connections ?? ctx.settings.connections,
    warmupSeconds: ctx.settings.warmupSeconds,
    durationSeconds: ctx.settings.durationSeconds,
    serverPid: server.pid,
  });
  ctx.cases[id] = {
    kind: 'http',
    label,
    server: server.name,
    path,
    payloadBytes,
    mbPerSecond: round((result.requestsPerSecond * payloadBytes) / 1e6, 1),
    ...result,
  };
  ctx.log(
    `    ${result.requestsPerSecond} req/s, p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms` +
      (result.serverCpuUsPerRequest !== undefined ? `, server CPU ${cpuText(result)}` : ''),
  );
}

/** "X us/req (user U, system S)". */
function cpuText(result: HttpMeasurement): string {
  return `${result.serverCpuUsPerRequest ?? 'n/a'} us/req (user ${result.serverUserUsPerRequest ?? 'n/a'}, system ${result.serverSystemUsPerRequest ?? 'n/a'})`;
}

/**
 * `--pin-http`: the server on the first CPU, the load generator (this process) on the same one
 * (`same`) or on the other (`split`); unpinned by default. With the generator on another CPU,
 * every response the server writes on loopback wakes it there, and the kernel charges that
 * wake-up to the server's system time; on the same CPU the wake-up is local and cheap
 * (docs/BENCHMARKS.md, CPU per request).
 */
function pinForHttp(ctx: RunContext, serverPid: number): void {
  const how = ctx.settings.pinHttp;
  if (!how) return;
  const split = httpCpuSplit();
  if ('missing' in split) throw new Error(`--pin-http ${how}: ${split.missing}`);
  if (!pin(serverPid, split.service) || !pin(process.pid, how === 'same' ? split.service : split.others)) {
    throw new Error(`--pin-http ${how}: taskset refused`);
  }
}

function unpinRunner(ctx: RunContext): void {
  if (!ctx.settings.pinHttp) return;
  const split = httpCpuSplit();
  if (!('missing' in split)) pin(process.pid, split.all);
}

/** Taken before the first pin: once this process is pinned, it sees one CPU only. */
let cpusBeforePinning: ReturnType<typeof cpuSplit> | undefined;
function httpCpuSplit(): ReturnType<typeof cpuSplit> {
  return (cpusBeforePinning ??= cpuSplit());
}

export async function runHttpCases(ctx: RunContext): Promise<void> {
  try {
    await runHttpGroups(ctx);
  } finally {
    unpinRunner(ctx);
  }
}

async function runHttpGroups(ctx: RunContext): Promise<void> {
  const http = wants(ctx, 'http');
  const large = wants(ctx, 'large');
  if (!http && !large) return;
  const chosen = (sizes: Sizes[]) => sizes.filter((size) => ctx.sizes.size === 0 || ctx.sizes.has(size.key));
  const small = http ? payloads(chosen(HTTP_SIZES)) : [];
  const big = large ? payloads(chosen(largeSizes())) : [];
  const largeConnections = ctx.settings.largeConnections;

  // (c) first: the decrypt bodies must be ciphertexts this very server made.
  const serviceDecryptBodies = new Map<string, string>();
  await withServer(startService(ctx, 'service-full', 'full'), async ({ server, auth }) => {
    for (const p of small) {
      const { ciphertext } = await postJson<{ ciphertext: string }>(`${server.url}/v1/encrypt`, p.encrypt, auth);
      serviceDecryptBodies.set(p.size.key, decryptBody(ciphertext));
    }
    for (const p of small) {
      await measure(ctx, server, `http.enc.${p.size.key}.c`, `(c) service encrypt, ${p.size.label}`, '/v1/encrypt', p.encrypt, p.size.bytes, { headers: auth });
      const body = serviceDecryptBodies.get(p.size.key)!;
      await measure(ctx, server, `http.dec.${p.size.key}.c`, `(c) service decrypt, ${p.size.label}`, '/v1/decrypt', body, p.size.bytes, { headers: auth });
    }
    if (big.length > 0) await runRawCryptoCases(ctx); // a raw-crypto sample next to these cases
    for (const p of big) {
      await measure(ctx, server, `large.enc.${p.size.key}.c`, `(c) service encrypt, JSON+base64, ${p.size.label}`, '/v1/encrypt', p.encrypt, p.size.bytes, {
        headers: auth,
        connections: largeConnections,
        client: 'streaming',
      });
      // The binary API with the same context as the JSON bodies (BENCH_CONTEXT).
      await measure(ctx, server, `large.enc.${p.size.key}.c-binary`, `(c) service encrypt, octet-stream, ${p.size.label}`, '/v1/encrypt/binary', p.plaintext, p.size.bytes, {
        headers: { ...auth, 'x-envelope-context': BINARY_CONTEXT_HEADER },
        connections: largeConnections,
        contentType: 'application/octet-stream',
        client: 'streaming',
      });
    }
  });

  await withServer(startBare(ctx, 'bare-echo'), async (server) => {
    for (const p of small) {
      await measure(ctx, server, `http.enc.${p.size.key}.a`, `(a) bare echo, encrypt body, ${p.size.label}`, '/echo', p.encrypt, p.size.bytes);
      const body = serviceDecryptBodies.get(p.size.key)!;
      await measure(ctx, server, `http.dec.${p.size.key}.a`, `(a) bare echo, decrypt body, ${p.size.label}`, '/echo', body, p.size.bytes);
    }
    if (big.length > 0) await runRawCryptoCases(ctx);
    for (const p of big) {
      await measure(ctx, server, `large.enc.${p.size.key}.a`, `(a) bare echo, ${p.size.label}`, '/echo', p.encrypt, p.size.bytes, {
        connections: largeConnections,
        client: 'streaming',
      });
    }
  });

  await withServer(startBare(ctx, 'bare-aes'), async (server) => {
    for (const p of small) {
      await measure(ctx, server, `http.enc.${p.size.key}.b`, `(b) bare AES-GCM encrypt, ${p.size.label}`, '/encrypt', p.encrypt, p.size.bytes);
      const { ciphertext } = await postJson<{ ciphertext: string }>(`${server.url}/encrypt`, p.encrypt);
      await measure(ctx, server, `http.dec.${p.size.key}.b`, `(b) bare AES-GCM decrypt, ${p.size.label}`, '/decrypt', decryptBody(ciphertext), p.size.bytes);
      if (p.size.key !== FLOOR_PARTS_SIZE) continue;
      // (b) taken apart: its base64 alone, and two seals more (docs/BENCHMARKS.md, CPU per request).
      await measure(ctx, server, `http.enc.${p.size.key}.b-base64`, `(b) without the seal: base64 in and out, ${p.size.label}`, '/reencode', p.encrypt, p.size.bytes);
      await measure(ctx, server, `http.enc.${p.size.key}.b-x3`, `(b) sealing three times, ${p.size.label}`, '/encrypt-thrice', p.encrypt, p.size.bytes);
    }
    if (big.length > 0) await runRawCryptoCases(ctx);
    for (const p of big) {
      await measure(ctx, server, `large.enc.${p.size.key}.b`, `(b) bare AES-GCM, JSON+base64, ${p.size.label}`, '/encrypt', p.encrypt, p.size.bytes, {
        connections: largeConnections,
        client: 'streaming',
      });
      await measure(ctx, server, `large.enc.${p.size.key}.b-binary`, `(b) bare AES-GCM, octet-stream, ${p.size.label}`, '/encrypt-binary', p.plaintext, p.size.bytes, {
        connections: largeConnections,
        contentType: 'application/octet-stream',
        client: 'streaming',
      });
    }
  });
}

/** The size at which (b) is also measured in parts (FLOOR_PART_CASES). */
const FLOOR_PARTS_SIZE = '1k';
export const FLOOR_PART_CASES = [`http.enc.${FLOOR_PARTS_SIZE}.b-base64`, `http.enc.${FLOOR_PARTS_SIZE}.b-x3`];

/** BENCH_CONTEXT as the binary API's context header. */
const BINARY_CONTEXT_HEADER = formatContextHeader(Object.entries(BENCH_CONTEXT));

/** Case 5: the same 1 KiB encrypt through each layer variant, "full" measured again alongside. */
export const LAYER_VARIANTS: ServiceVariant[] = [
  'full',
  'no-audit',
  'no-policy',
  'no-app-log',
  'no-turns',
  'minimal',
  'cache-off-local',
  'local-kms',
  'cache-off-local-kms',
  'tracing-all',
  'tracing-1pct',
  'tracing-stripped',
];

/**
 * All variant servers run at once (idle ones cost nothing); after one warm-up each, the
 * measured time is split into interleaved rounds (full, no-audit, ..., full, no-audit, ...) and
 * each variant keeps its median round, so background load drifting during the run hits every
 * variant alike instead of whichever happened to run then.
 */
export async function runLayerCases(ctx: RunContext): Promise<void> {
  if (!wants(ctx, 'layers')) return;
  const [p] = payloads([HTTP_SIZES[0]!]);
  const { warmupSeconds, durationSeconds, layerRounds: rounds, connections } = ctx.settings;
  const running: { variant: ServiceVariant; id: string; service: RunningService }[] = [];
  let sink: TraceSink | undefined;
  try {
    for (const variant of LAYER_VARIANTS) {
      if (ctx.variants.size > 0 && !ctx.variants.has(variant)) continue;
      if (variantUsesTracing(variant) && !sink) {
        sink = await startTraceSink();
        ctx.traceSinkEndpoint = sink.endpoint;
      }
      const id = `layer.enc.1k.${variant}`;
      if (variantUsesLocalKms(variant) && !('endpoint' in ctx.localKms)) {
        skip(ctx, id, VARIANT_LABELS[variant], ctx.localKms.missing);
        ctx.log(`  ${id}: SKIPPED (${ctx.localKms.missing})`);
        continue;
      }
      running.push({ variant, id, service: await startService(ctx, `service-${variant}`, variant) });
    }
    const spec = (service: RunningService, warm: number, duration: number) => ({
      url: `${service.server.url}/v1/encrypt`,
      headers: { 'content-type': 'application/json', ...service.auth },
      body: p!.encrypt,
      connections,
      warmupSeconds: warm,
      durationSeconds: duration,
      serverPid: service.server.pid,
    });
    for (const { id, service } of running) {
      ctx.log(`  ${id}: warm-up`);
      await measureHttp(spec(service, 0, warmupSeconds));
    }
    const samples = new Map<string, HttpMeasurement[]>(running.map(({ id }) => [id, []]));
    for (let round = 0; round < rounds; round++) {
      for (const { id, service } of running) samples.get(id)!.push(await measureHttp(spec(service, 0, durationSeconds / rounds)));
    }
    for (const { variant, id, service } of running) {
      const all = samples.get(id)!;
      const byRate = [...all].sort((a, b) => a.requestsPerSecond - b.requestsPerSecond);
      const median = byRate[Math.floor(byRate.length / 2)]!;
      const result: HttpMeasurement = {
        ...median,
        requestsTotal: all.reduce((sum, m) => sum + m.requestsTotal, 0),
        durationSeconds: round(all.reduce((sum, m) => sum + m.durationSeconds, 0), 2),
        ...medianCpu(all),
      };
      ctx.cases[id] = {
        kind: 'http',
        label: VARIANT_LABELS[variant],
        server: service.server.name,
        path: '/v1/encrypt',
        payloadBytes: p!.size.bytes,
        mbPerSecond: round((result.requestsPerSecond * p!.size.bytes) / 1e6, 1),
        ...result,
        roundsRequestsPerSecond: all.map((m) => m.requestsPerSecond),
      };
      ctx.log(
        `  ${id}: ${VARIANT_LABELS[variant]}: ${result.requestsPerSecond} req/s (rounds ${all.map((m) => m.requestsPerSecond).join(', ')}), ` +
          `p50 ${result.latencyMs.p50} ms, p99 ${result.latencyMs.p99} ms, server CPU ${cpuText(result)}`,
      );
    }
  } finally {
    for (const { service } of running) await service.server.stop();
    if (sink) {
      // Stopped services have sent their queued spans: what arrived shows the variants exported.
      const { exports, bytes } = sink.received();
      ctx.notes.push(`case 5 tracing variants: the OTLP sink received ${exports} exports, ${round(bytes / 1e6, 1)} MB`);
      ctx.log(`  trace sink: ${exports} exports, ${round(bytes / 1e6, 1)} MB received`);
      await sink.close();
      delete ctx.traceSinkEndpoint;
    }
  }
}

/** The CPU fields of the round whose total CPU per request is the median (its halves add up to it). */
function medianCpu(rounds: HttpMeasurement[]): Partial<HttpMeasurement> {
  const measured = rounds.filter((m) => m.serverCpuUsPerRequest !== undefined).sort((a, b) => a.serverCpuUsPerRequest! - b.serverCpuUsPerRequest!);
  const median = measured[Math.floor(measured.length / 2)];
  if (!median) return {};
  return {
    serverCpuUsPerRequest: median.serverCpuUsPerRequest!,
    ...(median.serverUserUsPerRequest !== undefined && { serverUserUsPerRequest: median.serverUserUsPerRequest }),
    ...(median.serverSystemUsPerRequest !== undefined && { serverSystemUsPerRequest: median.serverSystemUsPerRequest }),
  };
}
