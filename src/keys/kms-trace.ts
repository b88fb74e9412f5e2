import type { KmsCallContext, KmsPayer } from '../kms/call-context.js';
import type { KmsOperation } from '../kms/provider.js';


/**
 * One request's KMS context: the KMS request ids it caused or relied on (the audit trail
 * records them so each event can be joined with CloudTrail's `requestID`), and who pays for
 * the KMS calls it causes: the principal's budget and its share of the data-key cache.
 */
export class KmsTrace implements KmsCallContext {
  private readonly ids = new Set<string>();
  private payer: KmsPayer | undefined;
  /** The principal the request's cache entries belong to ('' before authentication). */
  owner = '';

  /** Charges this request's KMS calls to `payer`, and its cache entries to `owner`. */
  billTo(owner: string, payer: KmsPayer): void {
    this.owner = owner;
    this.payer = payer;
  }

  /** A trace for one batch item: its own request ids, the same payer. */
  forItem(): KmsTrace {
    const item = new KmsTrace();
    item.owner = this.owner;
    item.payer = this.payer;
    return item;
  }

  /** Called just before this request itself sends `operation` to KMS; throws when over budget. */
  charge(operation: KmsOperation): void | Promise<void> {
    return this.payer?.charge(operation);
  }

  inTurn<T>(send: () => Promise<T>): Promise<T> {
    return this.payer ? this.payer.inTurn(send) : send();
  }

  add(requestId: string | undefined): void {
    if (requestId) this.ids.add(requestId);
  }

  get requestIds(): string[] {
    return [...this.ids];
  }
}
