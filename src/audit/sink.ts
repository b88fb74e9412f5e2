import type { AuditEventInput, AuthFailuresSummaryDetails, FleetActionDetails, RefusalsSummaryDetails } from './event.js';

/** The audit log as its writers see it (the request edge, the refusal summaries): a write that resolves once the event is in the log, rejects otherwise. */
export interface AuditSink {
  write(event: AuditEventInput): Promise<void>;
  /** One event for the repeated authentication failures of a source (see auth-failures.ts). */
  summarizeAuthFailures(details: AuthFailuresSummaryDetails): Promise<void>;
  /** One event for a principal's repeated refusals for memory (see refusal-summaries.ts). */
  summarizeRefusals(details: RefusalsSummaryDetails): Promise<void>;
  /** One event for an admin action another replica sent through the fleet and this one carried out. */
  recordFleetAction(details: FleetActionDetails): Promise<void>;
  isWritable(): boolean;
}
