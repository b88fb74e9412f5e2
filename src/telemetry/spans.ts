/**
 * The service's own spans, through the OpenTelemetry API only.
 *
 * Off unless src/tracing.ts started the SDK and called enableSpans(): then every function here
 * is a direct call that touches no OpenTelemetry code (inSpan runs `work` with a shared
 * non-recording span and returns its promise as it is; attributes given as a thunk are never
 * built; no trace ids). Tracing off must cost nothing measurable: the API's own no-op would
 * still open a context and wrap each call in a closure and a promise.
 *
 * What a span may carry (docs/SECURITY.md, "Traces"): names, ids, counts, sizes, outcomes.
 * Never a payload, a data key, a token or its hash, or a context value: a trace backend is
 * read by more people, kept longer and protected less than the audit log. Every attribute is
 * set in this file or by a caller passing one of the ATTR names (span-attributes.ts).
 */
import { INVALID_SPAN_CONTEXT, SpanStatusCode, context, trace, type Attributes, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';
import { ATTR } from './span-attributes.js';

export { ATTR, contextShape } from './span-attributes.js';

/** The tracer once enableSpans() ran; undefined: spans are off. */
let tracer: Tracer | undefined;

/** The span `work` gets when spans are off: records nothing, has no valid ids. */
export const NOOP_SPAN: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/**
 * Turns the service's spans on: called by src/tracing.ts once the SDK has started (its
 * provider registered), never otherwise. Not undone: tracing is on or off for a process.
 */
export function enableSpans(): void {
  tracer = trace.getTracer('envelope-service');
}

/** True once enableSpans() ran: the log mixin and the audit event's trace ids exist only then. */
export function spansEnabled(): boolean {
  return tracer !== undefined;
}

/** A span's attributes, or a function building them: only called when spans are on. */
export type SpanAttributes = Attributes | (() => Attributes);

/**
 * Runs `work` in a new span, child of the active one, ended when `work` settles. A failure
 * marks the span as an error with the error's code or class name only: messages can quote
 * what a caller sent. Spans off: `work(NOOP_SPAN)`, its promise returned as it is.
 */
export function inSpan<T>(name: string, attributes: SpanAttributes, work: (span: Span) => Promise<T>): Promise<T> {
  if (tracer === undefined) return work(NOOP_SPAN);
  return tracer.startActiveSpan(name, { attributes: resolve(attributes) }, async (span) => {
    try {
      return await work(span);
    } catch (error) {
      markFailed(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}

/** A span that outlives the current call (a stream), child of the active one; the caller ends it. */
export function startSpan(name: string, attributes: SpanAttributes): Span {
  if (tracer === undefined) return NOOP_SPAN;
  return tracer.startSpan(name, { attributes: resolve(attributes) });
}

/** Runs `work` with `span` active, so spans started inside are its children. */
export function withSpan<T>(span: Span, work: () => T): T {
  if (tracer === undefined) return work();
  return context.with(trace.setSpan(context.active(), span), work);
}

function resolve(attributes: SpanAttributes): Attributes {
  return typeof attributes === 'function' ? attributes() : attributes;
}

export function markFailed(span: Span, error: unknown): void {
  if (tracer === undefined) return;
  const code = errorCodeOf(error);
  span.setAttribute(ATTR.errorCode, code);
  span.setStatus({ code: SpanStatusCode.ERROR, message: code });
}

/** An error's stable code (KmsError, ProblemError) or its class name; never its message. */
function errorCodeOf(error: unknown): string {
  if (error && typeof error === 'object') {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code.length <= 64) return code;
    const name = (error as { name?: unknown }).name;
    if (typeof name === 'string') return name;
  }
  return 'Error';
}

export interface TraceIds {
  traceId: string;
  spanId: string;
  /** False when the sampler dropped the trace: the ids are real, the backend has no spans. */
  sampled: boolean;
}

/** The ids of `span`, or undefined when spans are off (or for the no-op API's invalid span). */
export function traceIdsOf(span: Span | undefined): TraceIds | undefined {
  if (tracer === undefined || !span) return undefined;
  return idsOf(span.spanContext());
}

/** The ids of the active span, or undefined when there is none (tracing off, or outside a request). */
export function activeTraceIds(): TraceIds | undefined {
  if (tracer === undefined) return undefined;
  return traceIdsOf(trace.getActiveSpan());
}

function idsOf(spanContext: SpanContext): TraceIds | undefined {
  if (!trace.isSpanContextValid(spanContext)) return undefined;
  return { traceId: spanContext.traceId, spanId: spanContext.spanId, sampled: (spanContext.traceFlags & 1) === 1 };
}
