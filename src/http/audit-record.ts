/**
 * What a request learns about itself for its audit event, filled in as it goes (route,
 * authentication, policy, envelope service) and written once, in onSend, whatever happened.
 * Only sizes, ids and names: never plaintext, keys, tokens or ciphertext bodies.
 */
import type { ApiEventName, BatchItemOutcome, RequestParameters, ResponseElements, RouteEventName } from '../audit/event.js';
import type { AuthMethod } from '../authz/principal.js';
import type { DataKeyReport } from '../envelope/service.js';
import { KmsTrace } from '../envelope/kms-trace.js';

/** A batch item's outcome: the audit log's per-item record plus the status it got. */
export type AuditItemOutcome = BatchItemOutcome & { status: number };

export interface AuditRecord {
  eventName: ApiEventName | RouteEventName;
  principalId?: string;
  authMethod?: AuthMethod;
  ruleId?: string;
  denyReason?: string;
  requestParameters: RequestParameters;
  responseElements?: ResponseElements;
  dataKey?: DataKeyReport;
  items?: AuditItemOutcome[];
  errorCode?: string;
  errorMessage?: string;
  trace: KmsTrace;
}

export function newAuditRecord(eventName: ApiEventName | RouteEventName): AuditRecord {
  return { eventName, requestParameters: {}, trace: new KmsTrace() };
}
