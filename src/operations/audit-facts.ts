/**
 * What an operation tells the audit trail, returned with its result (or its failure): one
 * typed record, filled by the operation alone and written by the audit trail as is. Field
 * names are the audit event's own (docs/AUDIT.md). Only sizes, ids and names: never
 * plaintext, keys, tokens or ciphertext bodies.
 */
import type { BatchItemOutcome, RequestParameters, ResponseElements } from '../audit/event.js';
import type { DataKeyReport } from '../envelope/service.js';
import type { Caller } from './caller.js';
import { AccessDeniedError } from './errors.js';

export interface AuditFacts {
  requestParameters: RequestParameters;
  /** The key as resolved (an ARN) once authorized; requestParameters.keyId is the name asked for. */
  resolvedKeyId?: string;
  /** Written only when the request succeeds. */
  responseElements?: ResponseElements;
  /** The policy rule(s) that allowed the operation; absent when denied or not reached. */
  ruleId?: string;
  /** Why the policy denied it (never told to the caller). */
  denyReason?: string;
  dataKey?: DataKeyReport;
  /** Every KMS request id behind the operation (CloudTrail's `requestID`). */
  kmsRequestIds: string[];
  /** Batch requests: one outcome per item, in input order. */
  items?: BatchItemOutcome[];
}

/** An operation's result, or its failure, and its audit facts either way. */
export type Outcome<R> = { ok: true; value: R; facts: AuditFacts } | { ok: false; error: unknown; facts: AuditFacts };

/**
 * Runs `operation` with a fresh facts record and returns the outcome: the facts gathered so
 * far come back on failure too, with the deny reason of a policy denial and the caller's KMS
 * request ids.
 */
export async function withFacts<R>(caller: Caller, operation: (facts: AuditFacts) => Promise<R>): Promise<Outcome<R>> {
  const facts: AuditFacts = { requestParameters: {}, kmsRequestIds: [] };
  try {
    const value = await operation(facts);
    facts.kmsRequestIds = caller.kms.requestIds;
    return { ok: true, value, facts };
  } catch (error) {
    if (error instanceof AccessDeniedError) facts.denyReason = error.reason;
    facts.kmsRequestIds = caller.kms.requestIds;
    return { ok: false, error, facts };
  }
}
