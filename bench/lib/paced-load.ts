/**
 * An open-loop load at a fixed rate: one request every 1/rate s on a keep-alive pool, whether
 * or not earlier answers came back, as a steady service's traffic arrives. Each latency is
 * timed from the request's scheduled start (so a stalled server or pool is not hidden:
 * coordinated omission), to the microsecond.
 *
 * Why not autocannon's overallRate: it releases each tick's requests together, and they queue
 * behind each other at the server, so its p99 at a low rate measures the generator's bursts.
 */
import { Agent, request as httpRequest } from 'node:http';
import { round } from './load.js';

export interface PacedSpec {
  url: string;
  /** Requests per second. */
  rate: number;
  durationSeconds: number;
  /** Keep-alive connections at most (requests beyond them wait in the pool, and that wait counts). */
  connections: number;
  headers: Record<string, string>;
  /** Sent in turn. */
  requests: { path: string; body: string }[];
  /** `latencyAfterMs` counts only the requests scheduled this long after the start or later. */
  settleSeconds?: number;
}

export interface PacedResult {
  sent: number;
  ok: number;
  /** Non-2xx answers by status, and transport errors. */
  failed: Record<string, number>;
  durationSeconds: number;
  latencyMs: { p50: number; p99: number; mean: number; max: number };
  /** The same, over the requests scheduled `settleSeconds` after the start or later. */
  latencyAfterMs: { p99: number; max: number };
  /** Every 2xx latency, sorted, and those of the settled requests (to pool passes). */
  samplesMs: { all: number[]; settled: number[] };
}

export async function pacedLoad(spec: PacedSpec): Promise<PacedResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: spec.connections });
  const interval = 1_000 / spec.rate;
  const total = Math.round(spec.rate * spec.durationSeconds);
  const latencies: number[] = [];
  const settledLatencies: number[] = [];
  const settleMs = (spec.settleSeconds ?? 0) * 1_000;
  const failed: Record<string, number> = {};
  const pending: Promise<void>[] = [];
  const started = performance.now();
  try {
    for (let i = 0; i < total; i++) {
      const due = started + i * interval;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      const { path, body } = spec.requests[i % spec.requests.length]!;
      pending.push(
        send(agent, spec, path, body).then(
          (status) => {
            if (status >= 200 && status < 300) {
              const latency = performance.now() - due;
              latencies.push(latency);
              if (due - started >= settleMs) settledLatencies.push(latency);
            } else failed[status] = (failed[status] ?? 0) + 1;
          },
          () => {
            failed.errors = (failed.errors ?? 0) + 1;
          },
        ),
      );
    }
    await Promise.all(pending);
  } finally {
    agent.destroy();
  }
  const sorted = latencies.sort((a, b) => a - b);
  const settled = settledLatencies.sort((a, b) => a - b);
  const at = (q: number) => quantile(sorted, q);
  return {
    sent: total,
    ok: sorted.length,
    failed,
    durationSeconds: round((performance.now() - started) / 1_000, 2),
    latencyMs: { p50: at(0.5), p99: at(0.99), mean: round(sorted.reduce((sum, x) => sum + x, 0) / Math.max(1, sorted.length), 2), max: round(sorted.at(-1) ?? 0, 2) },
    latencyAfterMs: { p99: quantile(settled, 0.99), max: round(settled.at(-1) ?? 0, 2) },
    samplesMs: { all: sorted, settled },
  };
}

/** The q-quantile of ascending `values`, to the hundredth (0 for none). */
export function quantile(values: number[], q: number): number {
  return round(values[Math.min(values.length - 1, Math.floor(q * values.length))] ?? 0, 2);
}

function send(agent: Agent, spec: PacedSpec, path: string, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      new URL(path, spec.url),
      { method: 'POST', agent, headers: { ...spec.headers, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
        res.once('error', reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.once('error', reject);
    req.end(body);
  });
}
