import type { KmsOperation } from './provider.js';

/**
 * What a KMS caller tells the key look-ups about the request they serve: who pays for a call
 * it causes, and where the KMS request ids it relies on are recorded (for the audit trail's
 * join with CloudTrail). The envelope layer's per-request trace implements it.
 */
export interface KmsCallContext {
  /**
   * Called just before the request itself sends `operation` to KMS; throws (or, for a budget
   * kept in Redis, rejects) when over budget. Synchronous when the budget is in memory.
   */
  charge(operation: KmsOperation): void | Promise<void>;
  /** Sends the call it was charged for when the payer's turn comes (its KMS concurrency and pace). */
  inTurn<T>(send: () => Promise<T>): Promise<T>;
  add(requestId: string | undefined): void;
}

/** What a request charges its KMS calls to. */
export interface KmsPayer {
  /** Takes one token for `operation`, or throws KmsBudgetExceededError (a promise: a fleet-wide budget). */
  charge(operation: KmsOperation): void | Promise<void>;
  /** Sends one KMS call when this principal has a call slot free. */
  inTurn<T>(send: () => Promise<T>): Promise<T>;
}

/** One payer's bucket as the admin API shows it. */
export interface KmsBudgetUsage {
  principal: string;
  tokens: number;
  burst: number;
  perSecond: number;
}

/**
 * Who pays for KMS calls, by payer key (a tenant, or a principal without one). Implemented by
 * the admission layer's budgets (src/admission/kms-budget.ts); the operations see only this.
 */
export interface KmsPayers {
  payerFor(payerKey: string): KmsPayer;
  usage(): KmsBudgetUsage[];
}
