/**
 * One request -> the CloudTrail-shaped event the audit log writes: who and from where (the
 * request), what the operation did (its audit facts, as returned), and how it ended (status,
 * problem code). Field names follow CloudTrail's record so one query language covers both
 * (docs/AUDIT.md).
 */
import type { FastifyRequest } from 'fastify';
import type { AuditEventInput, RouteEventName } from '../audit/event.js';
import type { AuthMethod } from '../authz/principal.js';
import type { AuditFacts } from '../operations/operation.js';
import { callerRequestIdOf } from './caller-request-id.js';

/** What the edge adds to an operation's facts; undefined once the event is written (or when none is due). */
export interface AuditState {
  /** A failed authentication: how the caller tried, and why it was refused. */
  authMethod?: AuthMethod;
  denyReason?: string;
  /** What the operation returned. */
  facts?: AuditFacts;
  /** The problem the caller got. */
  error?: { code: string; message: string };
}

export function toAuditEvent(request: FastifyRequest, status: number, state: AuditState): AuditEventInput {
  const failed = status >= 400;
  const facts = state.facts;
  const principal = request.principal;
  // Built by assignment rather than conditional spreads: this runs once per request. Key
  // order is the line's order.
  const userIdentity: AuditEventInput['userIdentity'] = {
    type: principal?.authMethod ?? state.authMethod ?? 'anonymous',
    principalId: principal?.id ?? 'anonymous',
  };
  const ruleId = facts?.ruleId;
  if (ruleId) userIdentity.ruleId = ruleId;

  const kmsRequestIds = facts?.kmsRequestIds ?? [];
  const dataKey = facts?.dataKey;
  const additionalEventData: AuditEventInput['additionalEventData'] = dataKey
    ? { dataKeyId: dataKey.dataKeyId, cacheHit: dataKey.cacheHit, coalesced: dataKey.coalesced, kmsRequestIds }
    : { kmsRequestIds };
  additionalEventData.decision = ruleId ? 'allow' : status === 401 || status === 403 ? 'deny' : undefined;
  const denyReason = facts?.denyReason ?? state.denyReason;
  if (denyReason) additionalEventData.denyReason = denyReason;
  if (facts?.items) additionalEventData.items = facts.items;
  if (facts?.stream) additionalEventData.stream = facts.stream;
  if (facts?.keySet) additionalEventData.keySet = facts.keySet;
  const callerRequestId = callerRequestIdOf(request);
  if (callerRequestId) additionalEventData.callerRequestId = callerRequestId;

  const route = `${request.method} ${request.routeOptions.url ?? 'unmatched'}` as RouteEventName;
  const event: AuditEventInput = {
    eventName: request.routeOptions.config.eventName ?? route,
    userIdentity,
    sourceIPAddress: request.ip,
    // Bounded by the audit log itself (MAX_USER_AGENT_CHARS), like every caller-controlled string.
    userAgent: request.headers['user-agent'] ?? '',
    requestParameters: facts?.requestParameters ?? {},
    responseElements: failed ? null : (facts?.responseElements ?? null),
    requestID: request.id,
    httpStatus: status,
    additionalEventData,
  };
  if (failed) {
    event.errorCode = state.error?.code ?? 'Error';
    event.errorMessage = state.error?.message ?? '';
  }
  return event;
}
