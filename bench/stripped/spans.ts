/**
 * The `tracing-stripped` layer variant's src/telemetry/spans.js: tracing compiled out. The same
 * exports as the real module, each a pass-through, and no OpenTelemetry import at all (the type
 * imports below are erased). server-build.ts puts its compiled file in place of the real one
 * in a second build directory (from source, register.mjs resolves the real one to this file),
 * so `full` (tracing off) against `tracing-stripped` measures what the spans cost when off, in
 * the same run.
 *
 * The type at the end keeps the two modules alike: a name added to, removed from or retyped in
 * the real module fails the type check here.
 */
import type { Span, SpanContext } from '@opentelemetry/api';
import type * as Real from '../../src/telemetry/spans.js';
import type * as Stripped from './spans.js';

const INVALID_CONTEXT: SpanContext = { traceId: '00000000000000000000000000000000', spanId: '0000000000000000', traceFlags: 0 };

const NOOP_SPAN: Span = {
  spanContext: () => INVALID_CONTEXT,
  setAttribute: () => NOOP_SPAN,
  setAttributes: () => NOOP_SPAN,
  addEvent: () => NOOP_SPAN,
  addLink: () => NOOP_SPAN,
  addLinks: () => NOOP_SPAN,
  setStatus: () => NOOP_SPAN,
  updateName: () => NOOP_SPAN,
  end: () => undefined,
  isRecording: () => false,
  recordException: () => undefined,
};

export const enableSpans = (): void => undefined;
export const spansEnabled = (): boolean => false;
export const inSpan = <T>(_name: string, _attributes: unknown, work: (span: Span) => Promise<T>): Promise<T> => work(NOOP_SPAN);
export const startSpan = (): Span => NOOP_SPAN;
export const withSpan = <T>(_span: Span, work: () => T): T => work();
export const markFailed = (): void => undefined;
export const traceIdsOf = (): undefined => undefined;
export const activeTraceIds = (): undefined => undefined;

// Attribute names and the context's shape are plain data: the real module's, shared.
export { ATTR, contextShape } from '../../src/telemetry/span-attributes.js';
export { NOOP_SPAN };

/** Compiles only while this module has every export of the real one, each of a type that fits. */
type FitsTheRealModule<T extends typeof Real> = T;
export type StrippedSpans = FitsTheRealModule<typeof Stripped>;
