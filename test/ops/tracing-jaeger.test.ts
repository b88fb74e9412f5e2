/**
 * Tracing into a real receiver: the service process (src/server.ts, the AWS provider against
 * the shared local-kms) exports over OTLP to a private Jaeger, and the trace is read back from
 * Jaeger's HTTP query API, as an ops team would find it.
 *
 * One encrypt with a caller's `traceparent`; then:
 *   - the caller's trace is continued: every span is in its trace, the server span's parent is
 *     the caller's span;
 *   - the service's own spans, under the right parents: authenticate, authorize, the cache
 *     lookup (a miss), the KMS call with the request id KMS gave, which the audit event and
 *     the AWS SDK's span under it record too, the audit write;
 *   - the audit event names the trace and the audit write's span, the app log line the trace;
 *   - a stream has one span with its segment count, its ended event's audit write under it;
 *   - nothing forbidden anywhere in the trace's JSON: the plaintext (raw and base64), the data
 *     key (KMS unwraps it for the test), the ciphertext, the token and its hash, the context value.
 * And `OTEL_SDK_DISABLED=true` wins over a configured endpoint: nothing is exported, the audit
 * event has no trace ids.
 *
 * The KMS request id, CloudTrail's `requestID`, is followed from KMS's answer to the span and
 * the audit event. One thing is mocked for it, and only it: local-kms sends no
 * `x-amzn-RequestId` header (real KMS always does), so the service's KMS calls go through
 * test/helpers/fault-proxy.ts with `addRequestIds`, which adds a fresh UUID as that header to
 * each local-kms answer and records it. The answers themselves are local-kms's.
 *
 * Without a jaeger binary (scripts/jaeger.sh install): skipped locally with a message, failed
 * when CI=true.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DecryptCommand, KMSClient } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCiphertext } from '../../src/format/format.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { fetchTrace, findJaegerBinary, parentOf, startJaeger, tagsOf, waitForTrace, type JaegerInstance, type JaegerSpan } from '../helpers/jaeger.js';
import { LOCAL_KMS_CREDENTIALS, LOCAL_KMS_REGION, localKmsEndpoint } from '../helpers/local-kms.js';
import { REPO_ROOT, startService, tempDir, type ServiceProcess } from './helpers/service-process.js';

const TOKEN = 'token-billing';
const POLICY = join(REPO_ROOT, 'test', 'fixtures', 'policy', 'neighbours.yaml');
const binary = findJaegerBinary();
const kmsEndpoint = localKmsEndpoint();
const inCi = process.env.CI === 'true';
const runnable = Boolean(binary && kmsEndpoint);

if (!runnable && !inCi) {
  console.warn(
    `[tracing] ${binary ? 'no local-kms' : 'jaeger not found'}: the Jaeger tracing test is SKIPPED. Build jaeger with scripts/jaeger.sh install (needs Go).`,
  );
}

/** W3C traceparent of a caller: its trace and its own span, sampled. */
function callerTraceparent(): { traceId: string; parentSpanId: string; header: string } {
  const traceId = randomBytes(16).toString('hex');
  const parentSpanId = randomBytes(8).toString('hex');
  return { traceId, parentSpanId, header: `00-${traceId}-${parentSpanId}-01` };
}

function serviceEnv(dir: string, extra: Record<string, string>): Record<string, string> {
  return {
    KMS_PROVIDER: 'aws',
    KMS_ENDPOINT: kmsEndpoint ?? '',
    AWS_REGION: LOCAL_KMS_REGION,
    AWS_ACCESS_KEY_ID: LOCAL_KMS_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_KMS_CREDENTIALS.secretAccessKey,
    POLICY_FILE: POLICY,
    AUDIT_LOG: join(dir, 'audit.log'),
    LOCAL_KEYSTORE: join(dir, 'keystore.json'),
    LOG_LEVEL: 'info',
    REFUSAL_HOLD_MAX_MS: '0',
    ...extra,
  };
}

async function encrypt(service: ServiceProcess, traceparent: string, plaintext: Buffer, purpose: string): Promise<string> {
  const response = await fetch(`${service.baseUrl}/v1/encrypt`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', traceparent },
    body: JSON.stringify({ plaintext: plaintext.toString('base64'), context: { purpose } }),
  });
  const body = (await response.json()) as { ciphertext?: string };
  expect(response.status, JSON.stringify(body)).toBe(200);
  return body.ciphertext as string;
}

function auditEvents(dir: string): Record<string, any>[] {
  return readFileSync(join(dir, 'audit.log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, any>);
}

/** One line per span, indented under its parent: what the test prints for the record. */
function summary(spans: JaegerSpan[], callerSpanId: string): string {
  const byParent = new Map<string, JaegerSpan[]>();
  for (const span of spans) {
    const parent = parentOf(span) ?? '';
    byParent.set(parent, [...(byParent.get(parent) ?? []), span]);
  }
  const lines: string[] = [`caller span ${callerSpanId}`];
  const walk = (parent: string, depth: number) => {
    for (const span of (byParent.get(parent) ?? []).sort((a, b) => a.startTime - b.startTime)) {
      const tags = Object.entries(tagsOf(span))
        .filter(([key]) => !key.startsWith('otel.') && key !== 'span.kind' && !key.startsWith('network.') && key !== 'server.port')
        .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
      lines.push(`${'  '.repeat(depth)}${span.operationName} [${span.spanID}] ${tags.join(' ')}`);
      walk(span.spanID, depth + 1);
    }
  };
  walk(callerSpanId, 1);
  return lines.join('\n');
}

describe('traces exported to Jaeger', () => {
  if (!runnable && inCi) {
    it('has jaeger and local-kms in CI', () => {
      expect.fail(`CI=true but ${binary ? 'local-kms is not available' : 'no jaeger binary was found'}: run scripts/jaeger.sh install (the tracing test must not be skipped in CI)`);
    });
  }

  describe.runIf(runnable)('with a real Jaeger', () => {
    let jaeger: JaegerInstance;
    /** local-kms behind a proxy that adds the request id header it lacks (header comment). */
    let kmsWithRequestIds: FaultProxy;

    beforeAll(async () => {
      jaeger = await startJaeger(binary as string);
      kmsWithRequestIds = await startFaultProxy(kmsEndpoint as string, { addRequestIds: true });
    }, 90_000);

    afterAll(async () => {
      await kmsWithRequestIds?.close();
      await jaeger?.stop();
    });

    it('continues the caller trace through authentication, authorization, the cache, KMS and the audit write, and leaks nothing', async () => {
      const dir = tempDir('envelope-tracing-');
      const caller = callerTraceparent();
      const plaintext = Buffer.from(`trace-test plaintext ${randomBytes(12).toString('hex')}`);
      const purpose = `purpose-${randomBytes(6).toString('hex')}`;
      const service = await startService(
        serviceEnv(dir.path, {
          KMS_ENDPOINT: kmsWithRequestIds.endpoint,
          OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpEndpoint,
          OTEL_BSP_SCHEDULE_DELAY: '100',
          OTEL_TRACES_SAMPLER: 'parentbased_always_on',
        }),
        60_000,
      );
      try {
        kmsWithRequestIds.clearRecord();
        const ciphertext = await encrypt(service, caller.header, plaintext, purpose);
        // The encrypt's one GenerateDataKey, and the request id KMS (the proxy) gave it.
        const generated = kmsWithRequestIds.requests.filter((request) => request.operation === 'GenerateDataKey');
        expect(generated).toHaveLength(1);
        const kmsRequestId = generated[0]?.requestId as string;
        expect(kmsRequestId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
        const trace = await waitForTrace(jaeger.queryUrl, caller.traceId, [
          'POST /v1/encrypt',
          'authenticate',
          'authorize',
          'datakey.cache',
          'kms.GenerateDataKey',
          'KMS.GenerateDataKey',
          'audit.write',
        ]);
        const spans = trace.spans;
        console.log(`[tracing] trace ${caller.traceId} as Jaeger returns it (span [id] attributes, children indented):\n${summary(spans, caller.parentSpanId)}`);
        // Span names are names: Fastify names an anonymous plugin after its source code, which
        // @fastify/otel would put in the handler span's name.
        for (const span of spans) expect(span.operationName, 'a span name').not.toMatch(/=>|[{};]/);
        const named = (name: string): JaegerSpan => {
          const found = spans.filter((span) => span.operationName === name);
          expect(found, name).toHaveLength(1);
          return found[0] as JaegerSpan;
        };
        const byId = new Map(spans.map((span) => [span.spanID, span]));
        const parentName = (span: JaegerSpan) => byId.get(parentOf(span) ?? '')?.operationName;
        const ancestors = (span: JaegerSpan): string[] => {
          const names: string[] = [];
          for (let at = byId.get(parentOf(span) ?? ''); at; at = byId.get(parentOf(at) ?? '')) names.push(at.operationName);
          return names;
        };

        // The caller's trace, continued: same trace id everywhere, the server span under the caller's span.
        expect(new Set(spans.map((span) => span.traceID))).toEqual(new Set([caller.traceId]));
        const server = named('POST /v1/encrypt');
        expect(parentOf(server)).toBe(caller.parentSpanId);
        expect(tagsOf(server)['http.response.status_code']).toBe(200);

        // The service's own spans, inside the request, each where the time goes.
        for (const name of ['authenticate', 'authorize', 'datakey.cache', 'audit.write']) expect(ancestors(named(name)), name).toContain('POST /v1/encrypt');
        expect(tagsOf(named('authenticate'))).toMatchObject({ 'envelope.auth.method': 'api-key', 'enduser.id': 'billing', 'envelope.auth.outcome': 'authenticated' });
        expect(tagsOf(named('authorize'))).toMatchObject({
          'envelope.operation': 'encrypt',
          'envelope.authz.decision': 'allow',
          'envelope.authz.rule_id': 'billing-any-purpose',
          'envelope.context.key_count': 1,
        });
        expect(tagsOf(named('datakey.cache'))).toMatchObject({ 'envelope.cache.kind': 'encrypt', 'envelope.cache.result': 'miss' });
        // The KMS call carries the request id KMS gave it, as does the AWS SDK's span under it.
        const kms = named('kms.GenerateDataKey');
        expect(parentName(kms)).toBe('datakey.cache');
        expect(tagsOf(kms)).toMatchObject({ 'aws.request_id': kmsRequestId, 'envelope.kms.outcome': 'ok' });
        expect(parentName(named('KMS.GenerateDataKey'))).toBe('kms.GenerateDataKey');
        expect(tagsOf(named('KMS.GenerateDataKey'))).toMatchObject({ 'rpc.system': 'aws-api', 'rpc.method': 'GenerateDataKey', 'aws.request.id': kmsRequestId });
        // So does every KMS call of the request (the key's alias resolution too, on a fresh
        // service): each span's id is the one KMS gave that operation.
        const sent = new Map(kmsWithRequestIds.requests.map((request) => [request.requestId, request.operation]));
        const kmsSpans = spans.filter((span) => span.operationName.startsWith('kms.')).sort((a, b) => a.startTime - b.startTime);
        for (const span of kmsSpans) {
          const operation = span.operationName.slice('kms.'.length);
          const id = tagsOf(span)['aws.request_id'] as string;
          expect(sent.get(id), `${span.operationName}: aws.request_id ${id}`).toBe(operation);
          const sdkSpans = spans.filter((child) => parentOf(child) === span.spanID);
          expect(sdkSpans.map((child) => [child.operationName, tagsOf(child)['aws.request.id']])).toEqual([[`KMS.${operation}`, id]]);
        }

        // The audit event points to the trace (and to the audit write's span), and carries the
        // same KMS request ids, in call order: from the event to CloudTrail, and to the KMS spans.
        const event = auditEvents(dir.path).find((line) => line.eventName === 'Encrypt');
        console.log(`[tracing] its audit event: ${JSON.stringify(event)}`);
        expect(event?.additionalEventData.trace).toEqual({ traceId: caller.traceId, spanId: named('audit.write').spanID, sampled: true });
        expect(event?.additionalEventData.kmsRequestIds).toEqual(kmsSpans.map((span) => tagsOf(span)['aws.request_id']));
        expect(event?.additionalEventData.kmsRequestIds).toContain(kmsRequestId);
        const access = service.logRecords().find((line) => line.msg === 'request completed' && (line.req as { url?: string } | undefined)?.url === '/v1/encrypt');
        expect(access?.traceId).toBe(caller.traceId);

        // Nothing forbidden anywhere in what Jaeger holds. The data key, as KMS unwraps it.
        const envelope = parseCiphertext(ciphertext);
        const kmsClient = new KMSClient({ endpoint: kmsEndpoint, region: LOCAL_KMS_REGION, credentials: LOCAL_KMS_CREDENTIALS });
        const dataKey = Buffer.from(
          (await kmsClient.send(new DecryptCommand({ CiphertextBlob: envelope.wrappedKey, EncryptionContext: { purpose } }))).Plaintext ?? new Uint8Array(),
        );
        kmsClient.destroy();
        expect(dataKey).toHaveLength(32);
        const forbidden = {
          plaintext: plaintext.toString('utf8'),
          'plaintext (base64)': plaintext.toString('base64'),
          'data key (base64)': dataKey.toString('base64'),
          'data key (hex)': dataKey.toString('hex'),
          'wrapped key (base64)': envelope.wrappedKey.toString('base64'),
          ciphertext: ciphertext.slice(4, 60),
          token: TOKEN,
          'token hash': createHash('sha256').update(TOKEN).digest('hex'),
          'context value': purpose,
        };
        const raw = trace.raw.toLowerCase();
        for (const [what, value] of Object.entries(forbidden)) expect(raw.includes(value.toLowerCase()), `${what} in the trace`).toBe(false);
        // The context's key is there (its keys and their count are allowed).
        expect(tagsOf(named('authorize'))['envelope.context.keys']).toContain('purpose');

        // A stream: one span for the whole stream with its counts, its ended event's audit write under it.
        const streamCaller = callerTraceparent();
        const streamed = await fetch(`${service.baseUrl}/v1/encrypt/stream`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${TOKEN}`,
            'content-type': 'application/octet-stream',
            'x-envelope-context': `purpose=${purpose}`,
            traceparent: streamCaller.header,
          },
          body: Buffer.alloc(200_000, 7),
        });
        expect(streamed.status).toBe(200);
        await streamed.arrayBuffer();
        const streamTrace = await waitForTrace(jaeger.queryUrl, streamCaller.traceId, ['POST /v1/encrypt/stream', 'stream', 'audit.write', 'audit.write']);
        const streamSpans = streamTrace.spans.filter((span) => span.operationName === 'stream');
        expect(streamSpans).toHaveLength(1);
        const streamSpan = streamSpans[0] as JaegerSpan;
        // 200,000 bytes in 64 KiB segments: 4.
        expect(tagsOf(streamSpan)).toMatchObject({ 'envelope.stream.direction': 'encrypt', 'envelope.stream.outcome': 'completed', 'envelope.stream.segments': 4, 'envelope.stream.bytes_in': 200_000 });
        const writes = streamTrace.spans.filter((span) => span.operationName === 'audit.write');
        expect(writes.map((span) => parentOf(span) === streamSpan.spanID).sort()).toEqual([false, true]);
        expect(streamTrace.raw.includes(purpose)).toBe(false);
      } finally {
        await service.stop();
        dir.remove();
      }
    }, 180_000);

    it('exports nothing and writes no trace ids when OTEL_SDK_DISABLED=true, whatever else is set', async () => {
      const dir = tempDir('envelope-tracing-off-');
      const caller = callerTraceparent();
      const service = await startService(
        serviceEnv(dir.path, { OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpEndpoint, OTEL_BSP_SCHEDULE_DELAY: '100', OTEL_SDK_DISABLED: 'true' }),
        60_000,
      );
      try {
        await encrypt(service, caller.header, Buffer.from('off'), 'off');
      } finally {
        // A clean stop flushes whatever an SDK would have queued: after it, Jaeger has all there is.
        await service.stop();
      }
      try {
        const event = auditEvents(dir.path).find((line) => line.eventName === 'Encrypt');
        expect(event?.httpStatus).toBe(200);
        expect(event?.additionalEventData).not.toHaveProperty('trace');
        expect(service.logRecords().some((line) => 'traceId' in line)).toBe(false);
        expect(await fetchTrace(jaeger.queryUrl, caller.traceId)).toBeUndefined();
      } finally {
        dir.remove();
      }
    }, 120_000);
  });
});
