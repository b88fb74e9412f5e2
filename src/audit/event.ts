/**
 * The audit record: one JSON object per line, shaped like a CloudTrail record so the people
 * who read CloudTrail can read this log with the same habits and the same tools (Athena,
 * CloudTrail Lake). Field meanings are documented in docs/AUDIT.md.
 *
 * Deliberately absent: any field that could hold plaintext, ciphertext, data keys, AAD or
 * credentials. Sizes are recorded instead. The pino logger also redacts such names as a
 * backstop (see redaction.ts), but the types are the first line of defence.
 */

import type {
  BatchItemOutcome,
  EncryptionContextRecord,
  RequestParameters,
  ResponseElements,
  StreamAuditDetails,
} from '../operations/audit-facts.js';

// The shapes of the facts an operation reports are the operations' own (operations/audit-facts.ts);
// the event embeds them as they are.
export type { BatchItemOutcome, EncryptionContextRecord, RequestParameters, ResponseElements, StreamAuditDetails };

export const AUDIT_EVENT_VERSION = '1.0';
export const AUDIT_EVENT_SOURCE = 'envelope-service';

/** Names of the API operations, following KMS's CloudTrail vocabulary where one exists. */
export type ApiEventName =
  | 'Encrypt'
  | 'Decrypt'
  | 'EncryptBatch'
  | 'DecryptBatch'
  | 'ReEncrypt'
  | 'GenerateDataKey'
  | 'UnwrapDataKey'
  | 'ListKeys'
  | 'GetCacheState'
  | 'EvictDataKeys'
  | 'GetPolicyState'
  | 'ReloadPolicy'
  | 'GetKmsState'
  | 'EncryptStream'
  | 'DecryptStream';

/** Any other request is named by its route, e.g. `GET /v1/unknown`. */
export type RouteEventName = `${'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS'} ${string}`;

/** Events the audit log writes about itself (not caused by a request). */
export type ServiceEventName =
  | 'AuditChainResumed'
  | 'AuditSinkRecovered'
  | 'AuditLogReopened'
  | 'AuthFailuresSummarized'
  | 'RefusalsSummarized'
  /** A signed checkpoint: serviceEventDetails is a CheckpointDetails (checkpoint.ts). */
  | 'AuditCheckpoint';

export interface UserIdentity {
  /** How the caller authenticated; `anonymous` when no or bad credentials (401). */
  type: 'dev-token' | 'api-key' | 'jwt' | 'anonymous';
  /** API key name or JWT `sub`; `anonymous` for unauthenticated requests. Never the token. */
  principalId: string;
  /** The policy rule that allowed the request (absent when denied or not reached). */
  ruleId?: string;
}

export interface AdditionalEventData {
  /** Truncated SHA-256 of the wrapped data key (see dataKeyIdOf() in src/keys/data-key-cache.ts). */
  dataKeyId?: string;
  /** True when the data-key cache served the key (no KMS call for this request). */
  cacheHit?: boolean;
  /**
   * True when this request waited for a KMS call another request had already started for the
   * same cache partition (single-flight); kmsRequestIds are then that call's ids.
   */
  coalesced?: boolean;
  /**
   * `$metadata.requestId` of every KMS call behind this request; CloudTrail's `requestID`.
   * On a cache hit: the ids of the GenerateDataKey/Decrypt call that produced the cached key.
   */
  kmsRequestIds: string[];
  decision?: 'allow' | 'deny';
  denyReason?: string;
  items?: BatchItemOutcome[];
  /** The caller's own `x-request-id`, when it sent a valid one (`requestID` is always ours). */
  callerRequestId?: string;
  /** Streaming routes: which of the request's two events this is, and how the stream ended. */
  stream?: StreamAuditDetails;
}


/** Fields every line carries; `sequence` and `previousHash` form the hash chain. */
interface RecordBase {
  eventVersion: typeof AUDIT_EVENT_VERSION;
  /** ISO 8601 UTC with milliseconds, when the event was written. */
  eventTime: string;
  /** Random UUID identifying this record. */
  eventID: string;
  eventSource: typeof AUDIT_EVENT_SOURCE;
  /** 0 for the first line of a chain, then +1 per line. */
  sequence: number;
  /** SHA-256 (hex) of the previous line's exact bytes; 64 zeros for the first line. */
  previousHash: string;
}

/** One HTTP request: allowed or denied, succeeded or failed. */
export interface ApiCallEvent extends RecordBase {
  eventName: ApiEventName | RouteEventName;
  eventType: 'ApiCall';
  userIdentity: UserIdentity;
  sourceIPAddress: string;
  userAgent: string | null;
  /** The service's request id (a UUID, never the caller's); also the response's `x-request-id` and problems' `requestId`. */
  requestID: string;
  httpStatus: number;
  errorCode?: string;
  errorMessage?: string;
  requestParameters: RequestParameters | null;
  responseElements: ResponseElements | null;
  additionalEventData: AdditionalEventData;
}

export interface ChainResumedDetails {
  /** Why the previous chain could not simply be continued. */
  reason: 'partial-last-line' | 'unparseable-last-line' | 'invalid-last-event' | 'last-line-too-long';
  /** SHA-256 of the damaged last line as found (also this event's previousHash); null if too long to read. */
  lastLineHash: string | null;
  lastLineBytes: number | null;
  /** Sequence of the last valid event before the damage, if one was found near the end of the file. */
  lastValidSequence: number | null;
}

export interface SinkRecoveredDetails {
  /** Audit writes that failed (and whose requests were refused with 503) during the outage. */
  failedWrites: number;
  firstFailureTime: string;
  lastFailureTime: string;
  lastErrorCode: string;
}

/**
 * The file at AUDIT_LOG was no longer the one being written (rotated away or deleted), so
 * the log opened the file now at the path. This event is written into the new file right
 * after any events that were waiting, and like them it continues the previous file's chain.
 */
export interface LogReopenedDetails {
  /** What had become of the previous file: still linked under another name, or unlinked. */
  reason: 'renamed' | 'deleted';
  /** What noticed it: the reopen signal (SIGUSR2), a write, or a readiness check. */
  detectedBy: 'signal' | 'write' | 'readiness';
}

/**
 * Repeated failed authentications from one source address in one window: the first of each
 * reason was written as its own ApiCall event; the rest are counted here instead, so a flood of
 * bad tokens costs the audit volume a bounded number of lines (docs/AUDIT.md).
 */
export interface AuthFailuresSummaryDetails {
  /** The source: an IPv4 address, or an IPv6 /64 (`2001:db8:1:2::/64`). */
  sourceIPAddress: string;
  /** ISO 8601 UTC: the window's first failure, and when it closed (or was cut short at shutdown). */
  windowStart: string;
  windowEnd: string;
  /** Failures not written as their own event: the sum of byReason. */
  summarizedFailures: number;
  /** Those failures per denyReason (`too_many_failures`: refused with 429 by the per-address limit). */
  byReason: Record<string, number>;
  /** Every failure from the source in the window, the individually written ones included. */
  failuresInWindow: number;
}

/**
 * Repeated refusals of one principal for memory in one window (429 TooMuchBuffered or
 * BufferFull, 503 Overloaded): the first of each code was written as its own ApiCall event;
 * the rest are counted here instead (docs/AUDIT.md).
 */
export interface RefusalsSummaryDetails {
  principalType: UserIdentity['type'];
  principalId: string;
  /** ISO 8601 UTC: the window's first refusal, and when it closed (or was cut short at shutdown). */
  windowStart: string;
  windowEnd: string;
  /** Refusals not written as their own event: the sum of byCode. */
  summarizedRefusals: number;
  /** Those refusals per problem code. */
  byCode: Record<string, number>;
  /** Every such refusal of the principal in the window, the individually written ones included. */
  refusalsInWindow: number;
}

/** Written by the audit log itself; CloudTrail calls these service events. */
export interface ServiceEvent extends RecordBase {
  eventName: ServiceEventName;
  eventType: 'ServiceEvent';
  serviceEventDetails:
    | ChainResumedDetails
    | SinkRecoveredDetails
    | LogReopenedDetails
    | AuthFailuresSummaryDetails
    | RefusalsSummaryDetails
    | import('./checkpoint.js').CheckpointDetails;
}

export type AuditEvent = ApiCallEvent | ServiceEvent;

/**
 * What the HTTP layer fills in for each request. The audit log adds eventVersion,
 * eventSource, eventType, eventTime, eventID, sequence and previousHash.
 */
export type AuditEventInput = Omit<
  ApiCallEvent,
  'eventVersion' | 'eventSource' | 'eventType' | 'eventTime' | 'eventID' | 'sequence' | 'previousHash'
>;
