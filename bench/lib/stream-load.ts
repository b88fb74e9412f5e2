/**
 * A plain node:http load generator for the large-payload cases. autocannon appends every
 * response body chunk to a string (`req.body += data`, lib/pipelinedRequestsQueue.js), which
 * UTF-8-decodes binary responses: at 1 MiB of random bytes the load generator, not the server,
 * becomes the bottleneck (docs/BENCHMARKS.md). Here
 * each of `connections` keep-alive sockets sends the body, discards the answer unread, and
 * goes again, so binary and JSON responses cost the client the same.
 */
import { Agent, request } from 'node:http';
import { cpuPerRequest, processCpuTimes } from './cpu.js';
import { round, type HttpMeasurement, type LoadSpec } from './load.js';

export async function measureHttpStreaming(spec: LoadSpec): Promise<HttpMeasurement> {
  const agent = new Agent({ keepAlive: true, maxSockets: spec.connections });
  const url = new URL(spec.url);
  const body = spec.body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(spec.body) ? spec.body : Buffer.from(spec.body);
  const headers = { ...spec.headers, 'content-length': String(body.length) };
  const once = () =>
    new Promise<number>((resolve, reject) => {
      const started = performance.now();
      const req = request(
        { agent, host: url.hostname, port: url.port, path: url.pathname, method: spec.method ?? 'POST', headers },
        (res) => {
          const status = res.statusCode ?? 0;
          res.on('data', () => {});
          res.on('end', () => (status >= 200 && status < 300 ? resolve(performance.now() - started) : reject(new Error(`${spec.url}: HTTP ${status}`))));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const run = async (seconds: number): Promise<{ latencies: number[]; elapsedMs: number }> => {
    const latencies: number[] = [];
    const start = performance.now();
    const deadline = start + seconds * 1000;
    const worker = async () => {
      while (performance.now() < deadline) latencies.push(await once());
    };
    await Promise.all(Array.from({ length: spec.connections }, worker));
    return { latencies, elapsedMs: performance.now() - start };
  };
  try {
    if (spec.warmupSeconds > 0) await run(spec.warmupSeconds);
    const cpuBefore = spec.serverPid ? processCpuTimes(spec.serverPid) : undefined;
    const { latencies, elapsedMs } = await run(spec.durationSeconds);
    const cpuAfter = spec.serverPid ? processCpuTimes(spec.serverPid) : undefined;
    latencies.sort((a, b) => a - b);
    const at = (q: number) => round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0, 1);
    const total = latencies.length;
    return {
      requestsPerSecond: round((total * 1000) / elapsedMs, 1),
      requestsTotal: total,
      latencyMs: { p50: at(0.5), p99: at(0.99), mean: round(latencies.reduce((sum, v) => sum + v, 0) / Math.max(total, 1), 2) },
      ...cpuPerRequest(cpuBefore, cpuAfter, total),
      connections: spec.connections,
      durationSeconds: round(elapsedMs / 1000, 2),
      requestBytes: body.length,
    };
  } finally {
    agent.destroy();
  }
}
