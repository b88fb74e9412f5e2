/**
 * The KMS request ids a single HTTP request caused or relied on. The audit trail records them
 * so each event can be joined with CloudTrail's `requestID`.
 */
export class KmsTrace {
  private readonly ids = new Set<string>();

  add(requestId: string | undefined): void {
    if (requestId) this.ids.add(requestId);
  }

  get requestIds(): string[] {
    return [...this.ids];
  }
}
