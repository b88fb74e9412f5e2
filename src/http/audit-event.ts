/**
 * AuditRecord (what the request learned) -> the CloudTrail-shaped event the audit log writes.
 * Field names follow CloudTrail's record so one query language covers both (docs/AUDIT.md).
 */
import type { FastifyRequest } from 'fastify';
import type { AuditEventInput, AuthFailuresSummaryDetails } from '../audit/event.js';
import type { AuditRecord } from './audit-record.js';
import { callerRequestIdOf } from './caller-request-id.js';

/** The audit log as the HTTP layer sees it: a write that resolves once the event is in the log, rejects otherwise. */
export interface AuditSink {
  write(event: AuditEventInput): Promise<void>;
  /** One event for the repeated authentication failures of a source (see auth-failures.ts). */
  summarizeAuthFailures(details: AuthFailuresSummaryDetails): Promise<void>;
  isWritable(): boolean;
}

export function toAuditEvent(request: FastifyRequest, status: number, record: AuditRecord): AuditEventInput {
  const failed = status >= 400;
  // Built by assignment rather than conditional spreads: this runs once per request, and
  // the spreads' temporary objects showed in the profile. Key order is the line's order.
  const userIdentity: AuditEventInput['userIdentity'] = {
    type: record.authMethod ?? 'anonymous',
    principalId: record.principalId ?? 'anonymous',
  };
  if (record.ruleId) userIdentity.ruleId = record.ruleId;

  const kmsRequestIds = record.trace.requestIds;
  const dataKey = record.dataKey;
  const additionalEventData: AuditEventInput['additionalEventData'] = dataKey
    ? { dataKeyId: dataKey.dataKeyId, cacheHit: dataKey.cacheHit, coalesced: dataKey.coalesced, kmsRequestIds }
    : { kmsRequestIds };
  additionalEventData.decision = record.ruleId ? 'allow' : status === 401 || status === 403 ? 'deny' : undefined;
  if (record.denyReason) additionalEventData.denyReason = record.denyReason;
  if (record.items) additionalEventData.items = record.items;
  const callerRequestId = callerRequestIdOf(request);
  if (callerRequestId) additionalEventData.callerRequestId = callerRequestId;

  // The record is not copied: the event is serialized before this request's record is dropped.
  const event: AuditEventInput = {
    eventName: record.eventName,
    userIdentity,
    sourceIPAddress: request.ip,
    userAgent: request.headers['user-agent'] ?? '', // bounded by the audit log, like every caller-sent string
    requestParameters: record.requestParameters,
    responseElements: failed ? null : (record.responseElements ?? null),
    requestID: request.id,
    httpStatus: status,
    additionalEventData,
  };
  if (failed) {
    event.errorCode = record.errorCode ?? 'Error';
    event.errorMessage = record.errorMessage ?? '';
  }
  return event;
}
