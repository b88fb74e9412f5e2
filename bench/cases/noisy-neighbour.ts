/**
 * Case 6, noisy neighbour: what one principal's hostile traffic costs another's normal workload.
 *
 * B (the neighbour) encrypts and decrypts 1 KiB on one fixed context at a fixed offered rate,
 * as a steady service would. A (the flooder) sends, as fast as its connections allow, a mix of
 * three requests: encrypts on a new context each time (a cold cache partition, a KMS
 * GenerateDataKey each), decrypts of forged envelopes (a valid header for A's own key and
 * context, a random wrapped key: a KMS Decrypt each) and requests without a token (401s).
 *
 * Two passes, each on a fresh service with the service's defaults (every per-principal limit
 * included) and the same warm-up of B: B alone, then B while A floods for exactly B's measured time. Reported for
 * B: 2xx/s, failures, p50/p99, its cache hit rate and the KMS calls behind its misses (both from
 * its own audit events), and every KMS call the service made (/metrics). Against local-kms when
 * its binary is there (KMS calls are then real), else the embedded local provider.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { openSync, readSync, closeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import autocannon, { type Result } from 'autocannon';
import { encodeRewrapped, parseCiphertext, toCiphertextString } from '../../src/envelope/format.js';
import { KiB, NEIGHBOUR_A_TOKEN, NEIGHBOUR_B_TOKEN, NEIGHBOUR_POLICY_FILE } from '../lib/constants.js';
import { wants, type RunContext } from '../lib/context.js';
import { diff, kmsCalls } from '../lib/kms-metrics.js';
import { round } from '../lib/load.js';
import type { NeighbourCase } from '../lib/results.js';
import { postJson, startService, withServer } from '../lib/services.js';

export const NEIGHBOUR_CASE_IDS = ['neighbour.b.alone', 'neighbour.b.flooded'] as const;

/** B's steady workload: well under the default per-principal rate limit. */
const B_RATE = 200;
const B_CONNECTIONS = 8;
const B_CONTEXT = { tenant: 'b', purpose: 'reports' };
/** A's flood: closed loop, bounded by the pass's duration and this many requests. */
const A_CONNECTIONS = 32;
const A_MAX_REQUESTS = 200_000;

const json = { 'content-type': 'application/json' };
const bearer = (token: string) => ({ ...json, authorization: `Bearer ${token}` });

export async function runNoisyNeighbourCases(ctx: RunContext): Promise<void> {
  if (!wants(ctx, 'neighbour')) return;
  for (const flooded of [false, true]) {
    const id = flooded ? 'neighbour.b.flooded' : 'neighbour.b.alone';
    ctx.cases[id] = await pass(ctx, flooded);
    const c = ctx.cases[id] as NeighbourCase;
    ctx.log(
      `  ${id}: B ${c.requestsPerSecond} req/s (offered ${c.offeredRate}), p99 ${c.latencyMs.p99} ms, failed ${JSON.stringify(c.failed)}, ` +
        `cache hit rate ${c.cacheHitRate}, B's KMS calls ${c.kmsCalls}, service KMS calls ${JSON.stringify(c.serviceKmsCalls)}` +
        (c.flood ? `; A: ${c.flood.requests} requests ${JSON.stringify(c.flood.byStatus)}` : ''),
    );
  }
}

async function pass(ctx: RunContext, flooded: boolean): Promise<NeighbourCase> {
  const s = ctx.settings;
  const localKms = 'endpoint' in ctx.localKms;
  const name = `service-neighbour-${flooded ? 'flooded' : 'alone'}`;
  // A default deployment: the per-principal limits (rate, in-flight, KMS budget) are what keep
  // A's flood from B, so none is raised here, unlike in the other cases.
  const options = { env: { POLICY_FILE: NEIGHBOUR_POLICY_FILE }, defaultLimits: true };
  return withServer(startService(ctx, name, localKms ? 'local-kms' : 'full', options), async ({ server }) => {
    const plaintext = randomBytes(KiB).toString('base64');
    const own = await postJson<{ ciphertext: string }>(
      `${server.url}/v1/encrypt`,
      JSON.stringify({ plaintext, context: B_CONTEXT }),
      bearer(NEIGHBOUR_B_TOKEN),
    );
    const bOptions = {
      url: server.url,
      connections: B_CONNECTIONS,
      overallRate: B_RATE,
      timeout: 10,
      headers: bearer(NEIGHBOUR_B_TOKEN),
      requests: [
        { method: 'POST' as const, path: '/v1/encrypt', body: JSON.stringify({ plaintext, context: B_CONTEXT }) },
        { method: 'POST' as const, path: '/v1/decrypt', body: JSON.stringify({ ciphertext: own.ciphertext }) },
      ],
    };
    if (s.warmupSeconds > 0) await autocannon({ ...bOptions, duration: s.warmupSeconds });

    const auditFile = join(ctx.workDir, `audit-${name}.log`);
    const auditOffset = statSync(auditFile).size;
    const kmsBefore = await kmsCalls(server.url);
    const [b, a] = await Promise.all([
      autocannon({ ...bOptions, duration: s.durationSeconds }),
      flooded ? flood(server.url, plaintext, s.durationSeconds) : Promise.resolve(undefined),
    ]);
    const serviceKmsCalls = diff(kmsBefore, await kmsCalls(server.url));
    const audit = neighbourAudit(auditFile, auditOffset, 'neighbour-b');

    return {
      kind: 'neighbour',
      label: flooded ? 'B while A floods' : 'B alone',
      payloadBytes: KiB,
      provider: localKms ? 'local-kms' : 'local',
      offeredRate: B_RATE,
      connections: B_CONNECTIONS,
      durationSeconds: round(b.duration, 2),
      requestsPerSecond: round(b['2xx'] / b.duration, 1),
      requestsTotal: b['2xx'],
      failed: failures(b),
      latencyMs: { p50: b.latency.p50, p99: b.latency.p99, mean: round(b.latency.mean, 2) },
      ...audit,
      serviceKmsCalls,
      ...(a ? { flood: { connections: A_CONNECTIONS, requests: a.requests.total, byStatus: byStatus(a) } } : {}),
    };
  });
}

/** A's three kinds of request, in turn on each connection. */
async function flood(url: string, plaintext: string, durationSeconds: number): Promise<Result> {
  const a = bearer(NEIGHBOUR_A_TOKEN);
  const sample = await postJson<{ ciphertext: string }>(`${url}/v1/encrypt`, JSON.stringify({ plaintext, context: { tenant: 'a', purpose: 'seed' } }), a);
  const envelope = parseCiphertext(sample.ciphertext);
  const forged = () =>
    toCiphertextString(encodeRewrapped({ keyArn: envelope.keyArn, wrappedKey: randomBytes(envelope.wrappedKey.length) }, envelope.sealedPart));
  return autocannon({
    url,
    connections: A_CONNECTIONS,
    duration: durationSeconds,
    maxOverallRequests: A_MAX_REQUESTS,
    timeout: 10,
    requests: [
      {
        method: 'POST',
        path: '/v1/encrypt',
        headers: a,
        setupRequest: (request) => ({ ...request, body: JSON.stringify({ plaintext, context: { tenant: 'a', purpose: randomUUID() } }) }),
      },
      { method: 'POST', path: '/v1/decrypt', headers: a, setupRequest: (request) => ({ ...request, body: JSON.stringify({ ciphertext: forged() }) }) },
      { method: 'POST', path: '/v1/encrypt', headers: json, body: JSON.stringify({ plaintext, context: B_CONTEXT }) },
    ],
  });
}

function byStatus(result: Result): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [code, stat] of Object.entries(result.statusCodeStats)) out[code] = stat.count;
  return out;
}

function failures(result: Result): Record<string, number> {
  const out = Object.fromEntries(Object.entries(byStatus(result)).filter(([code]) => !code.startsWith('2')));
  if (result.errors > 0) out.errors = result.errors;
  if (result.timeouts > 0) out.timeouts = result.timeouts;
  return out;
}

interface AuditLine {
  userIdentity?: { principalId?: string };
  additionalEventData?: { cacheHit?: boolean; kmsRequestIds?: string[] };
}

/** B's cache hits and misses, and the distinct KMS calls behind its misses, from its audit events after `offset`. */
function neighbourAudit(file: string, offset: number, principalId: string): Pick<NeighbourCase, 'cacheHits' | 'cacheMisses' | 'cacheHitRate' | 'kmsCalls'> {
  let hits = 0;
  let misses = 0;
  const calls = new Set<string>();
  for (const line of readFrom(file, offset).split('\n')) {
    if (!line.includes(principalId)) continue;
    const event = JSON.parse(line) as AuditLine;
    if (event.userIdentity?.principalId !== principalId) continue;
    const data = event.additionalEventData;
    if (data?.cacheHit === true) hits++;
    if (data?.cacheHit === false) {
      misses++;
      for (const id of data.kmsRequestIds ?? []) calls.add(id);
    }
  }
  return { cacheHits: hits, cacheMisses: misses, cacheHitRate: hits + misses > 0 ? round(hits / (hits + misses), 4) : null, kmsCalls: calls.size };
}

function readFrom(file: string, offset: number): string {
  const size = statSync(file).size - offset;
  const buffer = Buffer.alloc(Math.max(0, size));
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buffer, 0, buffer.length, offset);
  } finally {
    closeSync(fd);
  }
  return buffer.toString('utf8');
}
