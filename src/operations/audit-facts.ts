/**
 * The shapes of the audit facts an operation reports (operation.ts's AuditFacts): the audit
 * event (audit/event.ts) embeds them as they are, under the same names, so field meanings are
 * the audit log's (docs/AUDIT.md). Sizes, ids and names only: never plaintext, ciphertext,
 * data keys, AAD or credentials.
 */

export type EncryptionContextRecord = Readonly<Record<string, string>>;

export interface RequestParameters {
  keyId?: string;
  /** ReEncrypt: the key the data key is re-wrapped under. */
  destinationKeyId?: string;
  /** The KMS encryption context judged by the policy (for Decrypt: the one stored in the ciphertext). */
  encryptionContext?: EncryptionContextRecord;
  plaintextBytes?: number;
  ciphertextBytes?: number;
  aadBytes?: number;
  /** Batch requests: number of items. */
  items?: number;
  /** POST /v1/datakey: whether the caller asked for the plaintext data key. */
  includePlaintext?: boolean;
  /** EvictDataKeys: every cached data key was asked to go. */
  all?: boolean;
}

export interface ResponseElements {
  /** The key actually used, as a full ARN when known. */
  keyId?: string;
  plaintextBytes?: number;
  ciphertextBytes?: number;
  wrappedKeyBytes?: number;
  /** Batch responses: number of results, and how many of them are errors. */
  items?: number;
  failedItems?: number;
  /** ListKeys: number of keys returned. */
  keyCount?: number;
  /** GetCacheState: cached data keys on this replica. */
  cachedKeys?: number;
  /** EvictDataKeys: data keys dropped (and zeroed). */
  droppedKeys?: number;
  /** GetPolicyState, ReloadPolicy: the digest of the policy in force afterwards. */
  policyDigest?: string;
  /** ReloadPolicy: whether the file was valid and swapped in. */
  policyReloaded?: boolean;
  /** EvictDataKeys, ReloadPolicy with a fleet (REDIS_URL): replicas announced, replicas that confirmed (this one included), and the ids of those that did not. */
  replicasExpected?: number;
  replicasConfirmed?: number;
  replicasMissing?: string[];
  /** GetFleetState: replicas announced. */
  replicaCount?: number;
}

/**
 * A key set's part in the operation: the set, every KMS key whose wrapped data key the
 * ciphertext carries, and which key (in which region) answered. The KMS request ids of those
 * calls are in kmsRequestIds as for any operation.
 */
export interface KeySetAuditDetails {
  /** The set's name, without `keyset/`. */
  name: string;
  /** Every KMS key ARN the ciphertext's key block holds (encrypt, rewrap: as written). */
  keys: string[];
  /** Keys of the set that could not wrap this data key (onGeneratorDown: next). */
  missingKeys?: string[];
  /** The key whose KMS call produced (encrypt) or unwrapped (decrypt) the data key, and its region. */
  answeredBy?: { keyArn: string; region: string };
  /** Keys tried before it, in order, with the error each gave (failover). */
  failedOver?: { keyArn: string; region: string; error: string }[];
}

/** Per-item outcome of a batch request, in input order. */
export interface BatchItemOutcome {
  index: number;
  keyId?: string;
  encryptionContext?: EncryptionContextRecord;
  dataKeyId?: string;
  cacheHit?: boolean;
  coalesced?: boolean;
  /** KMS request ids behind this item's data key (the producing call's ids on a cache hit). */
  kmsRequestIds: string[];
  decision?: 'allow' | 'deny';
  denyReason?: string;
  ruleId?: string;
  /** HTTP status the item would have had as a single request (200, 403, 422...). */
  status?: number;
  /** Problem `code` of the item's error, when the item failed. */
  errorCode?: string;
}

/**
 * A streaming request writes two events with the same requestID: `started` before the first
 * byte of the response leaves, `ended` once the stream is over, whatever ended it (docs/AUDIT.md).
 */
export interface StreamAuditDetails {
  phase: 'started' | 'ended';
  /** `ended` only. */
  outcome?: 'completed' | 'aborted-by-client' | 'timeout' | 'authentication-failed' | 'too-large' | 'spool-quota' | 'failed';
  /** Bytes read from the request body, and written to the response (header included). */
  bytesIn?: number;
  bytesOut?: number;
  /** Segments sealed or opened. */
  segments?: number;
  /** authentication-failed: the index (from 0) of the segment that failed. */
  failedSegment?: number;
}
