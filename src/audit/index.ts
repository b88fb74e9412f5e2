/** What the rest of the service uses from the audit module. */
export { AuditLog, AUDIT_LOG_STDOUT, type AuditLogOptions } from './audit-log.js';
export { AuditWriteError } from './errors.js';
export type { ChainHead } from './chain.js';
export type {
  AdditionalEventData,
  ApiCallEvent,
  ApiEventName,
  AuditEvent,
  AuditEventInput,
  BatchItemOutcome,
  RequestParameters,
  ResponseElements,
  RouteEventName,
  UserIdentity,
} from './event.js';
