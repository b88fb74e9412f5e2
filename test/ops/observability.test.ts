/**
 * What operators see of the real process: /metrics (the service's metrics and the default
 * process/Node.js metrics, which buildTestApp turns off), and the logs, where one request id
 * (always the service's own) ties together the response header, the app log lines and the
 * audit event, with the caller's x-request-id kept beside it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceMetrics } from '../../src/metrics/metrics.js';
import { json, send, type HttpResult } from './helpers/http.js';
import { until } from '../helpers/polling.js';
import { REPO_ROOT, startService, tempDir, type ServiceProcess } from './helpers/service-process.js';

let service: ServiceProcess;
let dir: ReturnType<typeof tempDir>;
let auditPath: string;
/** Not the default: the default token's text is also the name of its auth method in audit events. */
const TOKEN = 'ops-observability-token-5c1e';
const AUTH = { authorization: `Bearer ${TOKEN}` };

beforeAll(async () => {
  dir = tempDir();
  auditPath = join(dir.path, 'audit.log');
  service = await startService({
    LOCAL_KEYSTORE: join(dir.path, 'keystore.json'),
    AUDIT_LOG: auditPath,
    LOG_LEVEL: 'info',
    DEV_TOKEN: TOKEN,
  });
});
afterAll(async () => {
  await service?.stop();
  dir?.remove();
});

const PLAINTEXT = Buffer.from('observability secret payload').toString('base64');

async function encrypt(headers: Record<string, string> = {}): Promise<HttpResult> {
  const result = await send(`${service.baseUrl}/v1/encrypt`, {
    headers: { ...AUTH, ...headers },
    body: JSON.stringify({ plaintext: PLAINTEXT, context: { app: 'observability' } }),
  });
  if (result.kind !== 'response') throw new Error(result.message);
  return result;
}

function auditEvents(): Record<string, unknown>[] {
  return readFileSync(auditPath, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** `# TYPE name type` lines of a Prometheus text exposition. */
function metricTypes(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((match) => [match[1]!, match[2]!]));
}

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('/metrics of the real process', () => {
  it('exposes the service metrics and the default process metrics, in Prometheus text format', async () => {
    const encrypted = await encrypt();
    expect(encrypted.status).toBe(200);
    const decrypted = await send(`${service.baseUrl}/v1/decrypt`, {
      headers: AUTH,
      body: JSON.stringify({ ciphertext: json<{ ciphertext: string }>(encrypted).ciphertext, context: { app: 'observability' } }),
    });
    expect(decrypted.kind === 'response' && decrypted.status).toBe(200);

    const scraped = await send(`${service.baseUrl}/metrics`);
    if (scraped.kind !== 'response') throw new Error(scraped.message);
    expect(scraped.status).toBe(200);
    expect(scraped.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = scraped.body;
    const types = metricTypes(text);

    expect(Object.fromEntries([
      'http_request_duration_seconds',
      'kms_request_duration_seconds',
      'kms_requests_total',
      'datakey_cache_entries',
      'datakey_cache_hits_total',
      'datakey_cache_misses_total',
      'datakey_cache_evictions_total',
      'audit_events_total',
      'audit_write_failures_total',
      'app_log_dropped_lines_total',
      // prom-client's defaults: process and Node.js runtime.
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'process_start_time_seconds',
      'process_open_fds',
      'nodejs_eventloop_lag_seconds',
      'nodejs_heap_size_used_bytes',
      'nodejs_gc_duration_seconds',
    ].map((name) => [name, types.get(name)]))).toEqual({
      http_request_duration_seconds: 'histogram',
      kms_request_duration_seconds: 'histogram',
      kms_requests_total: 'counter',
      datakey_cache_entries: 'gauge',
      datakey_cache_hits_total: 'counter',
      datakey_cache_misses_total: 'counter',
      datakey_cache_evictions_total: 'counter',
      audit_events_total: 'counter',
      audit_write_failures_total: 'counter',
      app_log_dropped_lines_total: 'counter',
      process_cpu_seconds_total: 'counter',
      process_resident_memory_bytes: 'gauge',
      process_start_time_seconds: 'gauge',
      process_open_fds: 'gauge',
      nodejs_eventloop_lag_seconds: 'gauge',
      nodejs_heap_size_used_bytes: 'gauge',
      nodejs_gc_duration_seconds: 'histogram',
    });

    // The values follow what happened: one encrypt and one decrypt, each audited, one data key
    // generated and cached, its unwrap cached on the decrypt side.
    expect(sample(text, 'audit_events_total')).toBe(2);
    expect(sample(text, 'audit_write_failures_total')).toBe(0);
    expect(sample(text, 'app_log_dropped_lines_total')).toBe(0);
    expect(sample(text, 'datakey_cache_entries{cache="encrypt"}')).toBe(1);
    expect(sample(text, 'datakey_cache_entries{cache="decrypt"}')).toBe(1);
    expect(sample(text, 'datakey_cache_misses_total{cache="encrypt"}')).toBe(1);
    expect(sample(text, 'kms_requests_total{operation="GenerateDataKey",outcome="ok"}')).toBe(1);
    expect(sample(text, 'kms_request_duration_seconds_count{operation="GenerateDataKey"}')).toBe(1);
    expect(sample(text, 'http_request_duration_seconds_count{method="POST",route="/v1/encrypt",status_code="200"}')).toBe(1);
    expect(sample(text, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    // Never a payload, key or token in a metric.
    expect(text).not.toContain(PLAINTEXT);
    expect(text).not.toContain(TOKEN);
  });
});

describe('docs/OPERATIONS.md', () => {
  it('documents every metric the service registers', async () => {
    const doc = readFileSync(join(REPO_ROOT, 'docs', 'OPERATIONS.md'), 'utf8');
    const names = (await new ServiceMetrics({ collectDefaults: false }).registry.getMetricsAsJSON()).map((metric) => metric.name);
    expect(names.length).toBeGreaterThan(5);
    for (const name of names) expect(doc, `${name} is not documented`).toContain(`\`${name}\``);
  });
});

describe('request ids across the response, the app log and the audit log', () => {
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

  /** Checks the response, the access line and the audit event agree; returns them. */
  async function expectCorrelated(response: HttpResult): Promise<{ id: string; access: Record<string, unknown>; event: Record<string, unknown> }> {
    const id = String(response.headers['x-request-id']);
    const body = json<{ requestId?: string }>(response);
    if (response.status !== 200) expect(body.requestId).toBe(id);

    // The line comes through the child's stdout pipe: wait for it, on a deadline.
    const linesOf = () => service.logRecords().filter((record) => record.reqId === id);
    await until(() => linesOf().some((record) => record.msg === 'request completed'));
    const lines = linesOf();
    // One access line per request (the arrival line is debug level), self-contained.
    expect(lines.map((record) => record.msg)).toEqual(['request completed']);
    expect((lines[0]!.res as { statusCode: number }).statusCode).toBe(response.status);
    expect(lines[0]!.req).toMatchObject({ method: expect.any(String), url: expect.stringMatching(/^\/v1\//) });
    expect(lines[0]!.responseTime).toEqual(expect.any(Number));

    const events = auditEvents().filter((event) => event.requestID === id);
    expect(events).toHaveLength(1);
    expect(events[0]!.httpStatus).toBe(response.status);
    return { id, access: lines[0]!, event: events[0]! };
  }

  it('the request id is always the service\'s own; a caller\'s x-request-id is kept beside it', async () => {
    const response = await encrypt({ 'x-request-id': 'lb-7f3a.trace-0042' });
    expect(response.status).toBe(200);
    const { id, access, event } = await expectCorrelated(response);
    expect(id).toMatch(UUID);
    expect(access.callerRequestId).toBe('lb-7f3a.trace-0042');
    expect(event.additionalEventData).toMatchObject({ callerRequestId: 'lb-7f3a.trace-0042' });
  });

  it('a caller cannot make two requests share an audit requestID', async () => {
    const first = await expectCorrelated(await encrypt({ 'x-request-id': 'same-id' }));
    const second = await expectCorrelated(await encrypt({ 'x-request-id': 'same-id' }));
    expect(first.id).not.toBe(second.id);
    expect(auditEvents().filter((event) => event.requestID === 'same-id')).toEqual([]);
  });

  it('without one, the service makes one (a UUID) and uses it everywhere', async () => {
    const { id, access, event } = await expectCorrelated(await encrypt());
    expect(id).toMatch(UUID);
    expect(access).not.toHaveProperty('callerRequestId');
    expect(event.additionalEventData).not.toHaveProperty('callerRequestId');
  });

  it('a caller request id that could forge log lines is dropped, and a refused request is correlated too', async () => {
    // One refused request only: further failures from this address would be summarized.
    for (const [forged, authorization] of [['x'.repeat(129), 'Bearer wrong-token'], ['a"b', `Bearer ${TOKEN}`], ['line\tbreak', `Bearer ${TOKEN}`]] as const) {
      const response = await encrypt({ 'x-request-id': forged, authorization });
      expect(response.status).toBe(authorization === 'Bearer wrong-token' ? 401 : 200);
      const { id, access, event } = await expectCorrelated(response);
      expect(id).toMatch(UUID);
      expect(access).not.toHaveProperty('callerRequestId');
      expect(event.additionalEventData).not.toHaveProperty('callerRequestId');
    }
  });

  it('neither log holds the payload or the token', () => {
    const appLog = service.stdoutLines().join('\n');
    const auditLog = readFileSync(auditPath, 'utf8');
    for (const log of [appLog, auditLog]) {
      expect(log).not.toContain(PLAINTEXT);
      expect(log).not.toContain(TOKEN);
      expect(log).not.toContain('wrong-token');
    }
  });
});
