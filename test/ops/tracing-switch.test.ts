/**
 * When tracing is on: an OTLP endpoint turns it on, OTEL_SDK_DISABLED=true turns it off
 * whatever else is set, and nothing else does either (docs/OPERATIONS.md, "Traces"). The
 * process itself is checked against a real receiver in tracing-jaeger.test.ts; this is the rule.
 */
import { describe, expect, it } from 'vitest';
import { tracingEnabled, tracingRequested } from '../../src/tracing.js';

describe('the tracing switch', () => {
  it('is off without an OTLP endpoint, whatever other OTEL_* variables say', () => {
    expect(tracingRequested({})).toBe(false);
    expect(tracingRequested({ OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'always_on', OTEL_EXPORTER_OTLP_ENDPOINT: '  ' })).toBe(false);
  });

  it('is on with either endpoint variable', () => {
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' })).toBe(true);
  });

  it('is off with OTEL_SDK_DISABLED=true, whatever else is set', () => {
    const endpoints = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:4318/v1/traces' };
    expect(tracingRequested({ ...endpoints, OTEL_SDK_DISABLED: 'true' })).toBe(false);
    expect(tracingRequested({ ...endpoints, OTEL_SDK_DISABLED: ' TRUE ' })).toBe(false);
    // Only `true` disables, as the OpenTelemetry specification says.
    expect(tracingRequested({ ...endpoints, OTEL_SDK_DISABLED: 'false' })).toBe(true);
    expect(tracingRequested({ ...endpoints, OTEL_SDK_DISABLED: '1' })).toBe(true);
  });

  it('started the SDK in this process exactly when its environment asks for it', () => {
    expect(tracingEnabled).toBe(tracingRequested(process.env));
  });
});
