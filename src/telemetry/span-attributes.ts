/**
 * The names of the service's span attributes and the context's shape: plain data, no
 * OpenTelemetry, so the bench's tracing-compiled-out build (bench/stripped/spans.ts) shares
 * them with src/telemetry/spans.ts instead of copying them.
 */
import type { Attributes } from '@opentelemetry/api';

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

/** The context's keys (sorted) and their count: its values never go into a span. */
export function contextShape(context: Readonly<Record<string, string>>): Attributes {
  const keys = Object.keys(context).sort();
  return { [ATTR.contextKeys]: keys, [ATTR.contextKeyCount]: keys.length };
}
