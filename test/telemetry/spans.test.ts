/**
 * The service's own spans with tracing off and on (src/telemetry/spans.ts). Off, the promise is
 * that they cost nothing: no OpenTelemetry call, no attribute built, `work`'s own promise
 * returned. On, the same calls record real spans. A real tracer provider (the SDK's, exporting to
 * memory) is registered for the whole file, so a call that reached the API while spans are off
 * would record a span: the off tests would see it.
 */
import { context, trace } from '@opentelemetry/api';
import { node } from '@opentelemetry/sdk-node';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createAppLogger } from '../../src/logging.js';
import { ATTR, activeTraceIds, enableSpans, inSpan, NOOP_SPAN, spansEnabled, startSpan, traceIdsOf, withSpan } from '../../src/telemetry/spans.js';

const exporter = new node.InMemorySpanExporter();
const provider = new node.NodeTracerProvider({ spanProcessors: [new node.SimpleSpanProcessor(exporter)] });

/** Lines a logger writes, parsed. */
function logLines(): { lines: Record<string, unknown>[]; destination: { write(line: string): void } } {
  const lines: Record<string, unknown>[] = [];
  return { lines, destination: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } };
}

describe('the service spans', () => {
  beforeAll(() => {
    provider.register();
  });

  afterAll(async () => {
    vi.restoreAllMocks();
    await provider.shutdown();
    trace.disable();
    context.disable();
  });

  describe('off (src/tracing.ts did not start the SDK)', () => {
    it('run the work directly: its own promise, no OpenTelemetry call, no attributes built', async () => {
      const getTracer = vi.spyOn(trace, 'getTracer');
      const contextWith = vi.spyOn(context, 'with');
      const attributes = vi.fn(() => ({ [ATTR.operation]: 'encrypt' }));
      let seen: unknown;
      const promise = Promise.resolve('done');

      const returned = inSpan('authorize', attributes, (span) => {
        seen = span;
        return promise;
      });

      expect(spansEnabled()).toBe(false);
      expect(returned).toBe(promise);
      expect(await returned).toBe('done');
      expect(seen).toBe(NOOP_SPAN);
      expect(attributes).not.toHaveBeenCalled();
      expect(getTracer).not.toHaveBeenCalled();
      expect(contextWith).not.toHaveBeenCalled();
      expect(exporter.getFinishedSpans()).toHaveLength(0);
      getTracer.mockRestore();
      contextWith.mockRestore();
    });

    it('pass a failure through unchanged and record nothing', async () => {
      const failure = Object.assign(new Error('quoted input'), { code: 'AccessDenied' });
      await expect(inSpan('authorize', {}, async () => Promise.reject(failure))).rejects.toBe(failure);
      expect(exporter.getFinishedSpans()).toHaveLength(0);
    });

    it('start no stream span, nest nothing, and have no trace ids', () => {
      const attributes = vi.fn(() => ({ [ATTR.streamDirection]: 'encrypt' }));
      const span = startSpan('stream', attributes);
      expect(span).toBe(NOOP_SPAN);
      expect(attributes).not.toHaveBeenCalled();
      expect(withSpan(span, () => trace.getActiveSpan())).toBeUndefined();
      expect(traceIdsOf(span)).toBeUndefined();
      expect(activeTraceIds()).toBeUndefined();
      span.end();
      expect(exporter.getFinishedSpans()).toHaveLength(0);
    });

    it('leave the app log without trace fields', async () => {
      const { lines, destination } = logLines();
      const logger = createAppLogger({ LOG_LEVEL: 'info' }, { destination });
      logger.info('a line');
      expect(lines).toHaveLength(1);
      expect(lines[0]).not.toHaveProperty('traceId');
    });
  });

  describe('on (enableSpans, as src/tracing.ts calls it once the SDK started)', () => {
    beforeAll(() => {
      enableSpans();
    });

    it('record a span per call, with the attributes built when it starts', async () => {
      const attributes = vi.fn(() => ({ [ATTR.operation]: 'encrypt', [ATTR.contextKeyCount]: 1 }));
      let inside: ReturnType<typeof activeTraceIds>;
      const result = await inSpan('authorize', attributes, async (span) => {
        inside = activeTraceIds();
        expect(traceIdsOf(span)).toEqual(inside);
        return 'done';
      });

      expect(spansEnabled()).toBe(true);
      expect(result).toBe('done');
      expect(attributes).toHaveBeenCalledTimes(1);
      const [span] = exporter.getFinishedSpans();
      expect(span?.name).toBe('authorize');
      expect(span?.attributes).toEqual({ [ATTR.operation]: 'encrypt', [ATTR.contextKeyCount]: 1 });
      expect(inside).toEqual({ traceId: span?.spanContext().traceId, spanId: span?.spanContext().spanId, sampled: true });
      exporter.reset();
    });

    it('mark a failed span with the error code only, and rethrow it', async () => {
      const failure = Object.assign(new Error('quoted input'), { code: 'AccessDenied' });
      await expect(inSpan('authorize', {}, async () => Promise.reject(failure))).rejects.toBe(failure);
      const [span] = exporter.getFinishedSpans();
      expect(span?.attributes[ATTR.errorCode]).toBe('AccessDenied');
      expect(span?.status).toEqual({ code: 2, message: 'AccessDenied' });
      expect(JSON.stringify(span?.attributes)).not.toContain('quoted input');
      exporter.reset();
    });

    it('nest the spans started under a stream span', async () => {
      const stream = startSpan('stream', () => ({ [ATTR.streamDirection]: 'encrypt' }));
      await withSpan(stream, () => inSpan('audit.write', {}, async () => undefined));
      stream.end();
      const [write, streamSpan] = exporter.getFinishedSpans();
      expect(streamSpan?.attributes).toEqual({ [ATTR.streamDirection]: 'encrypt' });
      expect(write?.parentSpanContext?.spanId).toBe(streamSpan?.spanContext().spanId);
      exporter.reset();
    });

    it('put the active span in the app log lines', async () => {
      const { lines, destination } = logLines();
      const logger = createAppLogger({ LOG_LEVEL: 'info' }, { destination });
      const ids = await inSpan('authorize', {}, async () => {
        logger.info('inside');
        return activeTraceIds();
      });
      logger.info('outside');
      expect(lines[0]).toMatchObject({ traceId: ids?.traceId, spanId: ids?.spanId, msg: 'inside' });
      expect(lines[1]).not.toHaveProperty('traceId');
      exporter.reset();
    });
  });
});
