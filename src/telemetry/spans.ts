/**
 * The service's own spans, through the OpenTelemetry API only. Without a registered SDK
 * (tracing off, src/tracing.ts) the API is its no-op: a span is a shared non-recording object
 * and nothing is kept or sent, so these calls cost a function call each.
 *
 * What a span may carry (docs/SECURITY.md, "Traces"): names, ids, counts, sizes, outcomes.
 * Never a payload, a data key, a token or its hash, or a context value: a trace backend is
 * read by more people, kept longer and protected less than the audit log. Every attribute is
 * set in this file or by a caller passing one of the ATTR names below.
 */
import { SpanStatusCode, context, trace, type Attributes, type Span, type SpanContext } from '@opentelemetry/api';

const tracer = trace.getTracer('envelope-service');

/** Attribute names of the service's own spans (`envelope.*`), and the semantic ones reused. */
export const ATTR = {
  authMethod: 'envelope.auth.method',
  authOutcome: 'envelope.auth.outcome',
  principalId: 'enduser.id',
  operation: 'envelope.operation',
  decision: 'envelope.authz.decision',
  ruleId: 'envelope.authz.rule_id',
  contextKeys: 'envelope.context.keys',
  contextKeyCount: 'envelope.context.key_count',
  cacheKind: 'envelope.cache.kind',
  cacheResult: 'envelope.cache.result',
  kmsOperation: 'rpc.method',
  kmsRequestId: 'aws.request_id',
  kmsOutcome: 'envelope.kms.outcome',
  auditEventName: 'envelope.audit.event_name',
  streamDirection: 'envelope.stream.direction',
  streamOutcome: 'envelope.stream.outcome',
  streamSegments: 'envelope.stream.segments',
  streamFailedSegment: 'envelope.stream.failed_segment',
  streamBytesIn: 'envelope.stream.bytes_in',
  streamBytesOut: 'envelope.stream.bytes_out',
  errorCode: 'error.type',
} as const;

/**
 * Runs `work` in a new span, child of the active one, ended when `work` settles. A failure
 * marks the span as an error with the error's code or class name only: messages can quote
 * what a caller sent.
 */
export async function inSpan<T>(name: string, attributes: Attributes, work: (span: Span) => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
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
export function startSpan(name: string, attributes: Attributes): Span {
  return tracer.startSpan(name, { attributes });
}

/** Runs `work` with `span` active, so spans started inside are its children. */
export function withSpan<T>(span: Span, work: () => T): T {
  return context.with(trace.setSpan(context.active(), span), work);
}

export function markFailed(span: Span, error: unknown): void {
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

/** The context's keys (sorted) and their count: its values never go into a span. */
export function contextShape(context: Readonly<Record<string, string>>): Attributes {
  const keys = Object.keys(context).sort();
  return { [ATTR.contextKeys]: keys, [ATTR.contextKeyCount]: keys.length };
}

export interface TraceIds {
  traceId: string;
  spanId: string;
  /** False when the sampler dropped the trace: the ids are real, the backend has no spans. */
  sampled: boolean;
}

/** The ids of `span`, or undefined for the no-op API's invalid span (tracing off). */
export function traceIdsOf(span: Span | undefined): TraceIds | undefined {
  if (!span) return undefined;
  return idsOf(span.spanContext());
}

/** The ids of the active span, or undefined when there is none (tracing off, or outside a request). */
export function activeTraceIds(): TraceIds | undefined {
  return traceIdsOf(trace.getActiveSpan());
}

function idsOf(spanContext: SpanContext): TraceIds | undefined {
  if (!trace.isSpanContextValid(spanContext)) return undefined;
  return { traceId: spanContext.traceId, spanId: spanContext.spanId, sampled: (spanContext.traceFlags & 1) === 1 };
}
