/**
 * AuditRecord (what the request learned) -> the CloudTrail-shaped event the audit log writes.
 * Field names follow CloudTrail's record so one query language covers both (docs/AUDIT.md).
 */
import type { FastifyRequest } from 'fastify';
import type { AuditEventInput } from '../audit/event.js';
import type { AuditRecord } from './audit-record.js';

/** The audit log as the HTTP layer sees it: a synchronous write that throws on failure. */
export interface AuditSink {
  write(event: AuditEventInput): void;
  isWritable(): boolean;
}

export function toAuditEvent(request: FastifyRequest, status: number, record: AuditRecord): AuditEventInput {
  const failed = status >= 400;
  const kmsRequestIds = record.trace.requestIds;
  return {
    eventName: record.eventName,
    userIdentity: {
      type: record.authMethod ?? 'anonymous',
      principalId: record.principalId ?? 'anonymous',
      ...(record.ruleId ? { ruleId: record.ruleId } : {}),
    },
    sourceIPAddress: request.ip,
    userAgent: truncate(request.headers['user-agent'] ?? '', 256),
    requestParameters: { ...record.requestParameters },
    responseElements: failed ? null : (record.responseElements ?? null),
    ...(failed ? { errorCode: record.errorCode ?? 'Error', errorMessage: record.errorMessage ?? '' } : {}),
    requestID: request.id,
    httpStatus: status,
    additionalEventData: {
      ...(record.dataKey ? { dataKeyId: record.dataKey.dataKeyId, cacheHit: record.dataKey.cacheHit, coalesced: record.dataKey.coalesced } : {}),
      kmsRequestIds,
      decision: record.ruleId ? 'allow' : status === 401 || status === 403 ? 'deny' : undefined,
      ...(record.denyReason ? { denyReason: record.denyReason } : {}),
      ...(record.items ? { items: record.items } : {}),
    },
  };
}

function truncate(value: string, max: number): string {
  return value.length > max ? value.slice(0, max) : value;
}
