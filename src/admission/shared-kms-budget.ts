/**
 * The KMS budget for the whole fleet (REDIS_URL): each payer's (tenant's, or principal's)
 * KMS calls are also counted in Redis, so a flood of new contexts spread over replicas costs
 * the fleet one budget, not one per replica. The per-process token bucket, turns and pace
 * (kms-budget.ts) stay as they are and are charged first: a replica's own count is part of
 * the fleet's, so it refuses first only after the fleet has refused the payer (a call the
 * fleet refused still took its local token).
 *
 * rate-limiter-flexible counts in fixed windows: the fleet budget is KMS_BUDGET_BURST calls per
 * window of KMS_BUDGET_BURST / KMS_BUDGET_PER_SECOND seconds (rounded up to a whole second), the
 * token bucket's burst and long-run rate. When Redis does not answer, the window is counted per
 * process (shared-limits.ts).
 */
import type { KmsBudgetUsage, KmsPayer, KmsPayers } from '../kms/call-context.js';
import type { KmsOperation } from '../kms/provider.js';
import { KmsBudgetExceededError } from './kms-budget.js';
import type { SharedLimits, WindowLimiter } from './shared-limits.js';

export interface FleetKmsBudgetOptions {
  perSecond: number;
  burst: number;
  /** Called for every call the fleet budget refused (the per-process bucket reports its own). */
  onReject?: (operation: KmsOperation) => void;
}

export class FleetKmsBudgets implements KmsPayers {
  private readonly window: WindowLimiter;

  constructor(
    private readonly local: KmsPayers,
    shared: SharedLimits,
    private readonly options: FleetKmsBudgetOptions,
  ) {
    this.window = shared.window({ name: 'kms', points: options.burst, durationMs: Math.ceil((options.burst / options.perSecond) * 1000) });
  }

  payerFor(payerKey: string): KmsPayer {
    const local = this.local.payerFor(payerKey);
    return {
      charge: (operation) => {
        const charged = local.charge(operation);
        return charged ? charged.then(() => this.chargeFleet(payerKey, operation)) : this.chargeFleet(payerKey, operation);
      },
      inTurn: (send) => local.inTurn(send),
    };
  }

  /** The per-process buckets (the admin API's view of this replica). */
  usage(): KmsBudgetUsage[] {
    return this.local.usage();
  }

  private async chargeFleet(payerKey: string, operation: KmsOperation): Promise<void> {
    const decision = await this.window.consume(payerKey);
    if (decision.allowed) return;
    this.options.onReject?.(operation);
    throw new KmsBudgetExceededError(operation, Math.max(1, decision.msBeforeNext));
  }
}
