/**
 * What every operation takes, the caller and its dependencies, and what it returns: its result
 * or its failure, with one record of audit facts either way. The facts are filled by the
 * operation alone and written by the audit trail as is; field names are the audit event's own
 * (docs/AUDIT.md). Only sizes, ids and names: never plaintext, keys, tokens or ciphertext bodies.
 */
import type { BatchItemOutcome, KeySetAuditDetails, RequestParameters, ResponseElements, StreamAuditDetails } from './audit-facts.js';
import type { KeySets } from '../keys/key-sets.js';
import type { RegionalKms } from '../kms/regional.js';
import type { Policy } from '../authz/policy.js';
import type { Principal } from '../authz/principal.js';
import { tenantKey } from '../authz/principal-key.js';
import type { KeyDirectory } from '../keys/key-directory.js';
import type { KmsPayers } from '../kms/call-context.js';
import { KmsTrace } from '../keys/kms-trace.js';
import type { DataKeyReport, EnvelopeService } from '../keys/envelope-service.js';
import { AccessDeniedError } from './errors.js';
import type { KeyGuard } from './key-guard.js';

export interface Caller {
  principal: Principal;
  /** The policy snapshot the caller was authenticated with; kept for the whole request. */
  policy: Policy;
  /**
   * The request's KMS context, created once per request: the principal's KMS budget and cache
   * share, and the KMS request ids the operation caused or relied on.
   */
  kms: KmsTrace;
}

export interface OperationDeps {
  guard: KeyGuard;
  envelope: EnvelopeService;
  directory: KeyDirectory;
  /** Per-principal KMS budgets and turns: every caller's KMS calls are billed here. */
  budgets: KmsPayers;
  defaultKeyId: string;
  /** Key sets (KEY_SETS_FILE); none configured: `keyset/…` names are unknown keys. */
  keySets: KeySets;
  /** Which region each key's calls go to, and whether its breaker is open. */
  regions: Pick<RegionalKms, 'regionOf' | 'isDown'>;
  /** Regions a key-set unwrap tries first, in order (KMS_LOCAL_REGION, default AWS_REGION). */
  regionOrder: readonly string[];
  /** Told of key-set data keys made and unwrapped (metrics). */
  keySetEvents?: KeySetEvents;
}

export interface KeySetEvents {
  dataKeyMade(keySet: string, region: string, complete: boolean): void;
  unwrapped(keySet: string, region: string, failover: boolean): void;
}

/**
 * The caller of one request, with the request's KMS context: its KMS calls are charged to its
 * tenant's budget, and the data keys it fetches count against its tenant's share of the cache
 * (a principal without a tenant is its own).
 */
export function newCaller(deps: Pick<OperationDeps, 'budgets'>, principal: Principal, policy: Policy): Caller {
  // The tenant, else the principal by method and id: an API key and a JWT with the same name
  // are different payers, and a tenant's principals are one.
  const payer = tenantKey(principal);
  const kms = new KmsTrace();
  kms.billTo(payer, deps.budgets.payerFor(payer));
  return { principal, policy, kms };
}

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
  /** Streaming requests: the phase (and, when ended, the outcome) this event records. */
  stream?: StreamAuditDetails;
  /** A key set's part: its keys and the one that answered. */
  keySet?: KeySetAuditDetails;
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

