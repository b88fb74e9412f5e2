/** Who an operation runs for, and what every operation needs. */
import type { Policy } from '../authz/policy.js';
import type { Principal } from '../authz/principal.js';
import type { KeyDirectory } from '../envelope/key-directory.js';
import type { KmsTrace } from '../envelope/kms-trace.js';
import type { EnvelopeService } from '../envelope/service.js';
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
  defaultKeyId: string;
}
