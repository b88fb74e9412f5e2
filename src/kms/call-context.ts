import type { KmsOperation } from './provider.js';

/**
 * What a KMS caller tells the key look-ups about the request they serve: who pays for a call
 * it causes, and where the KMS request ids it relies on are recorded (for the audit trail's
 * join with CloudTrail). The envelope layer's per-request trace implements it.
 */
export interface KmsCallContext {
  /** Called just before the request itself sends `operation` to KMS; throws when over budget. */
  charge(operation: KmsOperation): void;
  /** Sends the call it was charged for when the payer's turn comes (its KMS concurrency and pace). */
  inTurn<T>(send: () => Promise<T>): Promise<T>;
  add(requestId: string | undefined): void;
}
