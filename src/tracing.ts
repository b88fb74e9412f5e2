/**
 * OpenTelemetry tracing for the process: off unless an OTLP endpoint is configured
 * (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); OTEL_SDK_DISABLED=true
 * turns it off whatever else is set. Everything else comes from the standard OTEL_* variables,
 * read by the SDK itself (service name and resource, protocol, headers, sampler, batch delays).
 *
 * Why this is the first import of src/server.ts, and synchronous: the instrumentations patch
 * `http` and the AWS SDK when they are first loaded (require-in-the-middle; both are loaded
 * through CommonJS `require`, by Fastify and by @aws-sdk/client-kms), so the SDK must be
 * started before any module that loads them is evaluated. ES modules evaluate their imports in
 * order, depth first, and a module without top-level await finishes before the next import
 * starts: so this file starts the SDK with a synchronous `require`, and every later import of
 * server.ts sees the patched modules. (A top-level await here would not hold the sibling
 * imports back.) @fastify/otel needs no patching: it registers itself on each Fastify instance
 * through Fastify's diagnostics channel.
 *
 * With tracing off nothing of the SDK is loaded and the service's own spans (src/telemetry/)
 * stay off: direct calls, no OpenTelemetry code on a request's path. They are switched on here,
 * once the SDK has started.
 */
import { createRequire } from 'node:module';
import type { NodeSDK } from '@opentelemetry/sdk-node';
import { enableSpans } from './telemetry/spans.js';

/** Routes never traced: probes and scrapes would fill the backend with nothing to follow. */
const UNTRACED_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/** Whether the environment asks for tracing (the rule in this file's header). */
export function tracingRequested(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim());
}

const sdk: NodeSDK | undefined = tracingRequested() ? startTracing() : undefined;

/** True when this process exports traces. */
export const tracingEnabled = sdk !== undefined;

/** Sends the spans still queued and stops the exporter (shutdown); waits at most `timeoutMs`. */
export async function stopTracing(timeoutMs: number): Promise<void> {
  if (!sdk) return;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((done) => {
    timer = setTimeout(done, timeoutMs);
  });
  await Promise.race([sdk.shutdown().catch(() => undefined), timeout]);
  clearTimeout(timer);
}

function startTracing(): NodeSDK {
  const require = createRequire(import.meta.url);
  const { NodeSDK } = require('@opentelemetry/sdk-node') as typeof import('@opentelemetry/sdk-node');
  const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http') as typeof import('@opentelemetry/instrumentation-http');
  const { AwsInstrumentation } = require('@opentelemetry/instrumentation-aws-sdk') as typeof import('@opentelemetry/instrumentation-aws-sdk');
  const { FastifyOtelInstrumentation } = require('@fastify/otel') as typeof import('@fastify/otel');

  const pathOf = (url: string | undefined): string => (url ?? '').split('?', 1)[0] ?? '';
  const sdk = new NodeSDK({
    // OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) wins over this default.
    ...(process.env.OTEL_SERVICE_NAME || /(^|,)\s*service\.name=/.test(process.env.OTEL_RESOURCE_ATTRIBUTES ?? '') ? {} : { serviceName: 'envelope-service' }),
    // Traces only: the metrics are Prometheus' (/metrics), the logs are pino's.
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (request) => UNTRACED_PATHS.has(pathOf(request.url)),
      }),
      // Its span is the KMS call as the SDK sends it (retries inside); the HTTP client span
      // under it would repeat it.
      new AwsInstrumentation({ suppressInternalInstrumentation: true }),
      new FastifyOtelInstrumentation({
        registerOnInitialization: true,
        // The route's request and handler spans; a span per hook would name each by its
        // function's source and repeat what the service's own spans (authenticate, audit.write) say.
        instrumentHooks: false,
        ignorePaths: (route) => UNTRACED_PATHS.has(pathOf(route.url)),
      }),
    ],
  });
  sdk.start();
  enableSpans();
  return sdk;
}
