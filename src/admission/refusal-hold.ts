/**
 * A caller refused with 429 waits for its answer: the response is held for the Retry-After it
 * carries, at most REFUSAL_HOLD_MAX_MS. A client that retries at once (a tight loop, a retry
 * storm, a hostile tenant) then sends at most one request per connection per hold instead of as
 * many as the event loop can refuse, so its refusals stop taking turns from other callers'
 * requests. Each hold is drawn between half and all of that time, so connections refused
 * together do not all return together. A client that honours Retry-After loses nothing: the
 * time held is taken off the Retry-After it gets.
 *
 * The audit event is written before the hold (its time is the decision's). Held answers are
 * bounded per caller (principal, or source address when unauthenticated) and in total; beyond
 * either bound a 429 goes out at once, so holding never costs more than a bounded number of
 * open requests. A client that disconnects frees its place; shutdown releases every hold.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { principalKey } from '../authz/principal-key.js';
import { addressBucket } from './address-bucket.js';

export interface RefusalHoldLimits {
  /** The longest hold, ms; 0 turns holding off. */
  maxMs: number;
  /** Answers held at once for one caller. */
  perCaller: number;
  /** Answers held at once in all. */
  total: number;
}

export type HoldOutcome = 'held' | 'over_cap' | 'off';

/** The bookkeeping: who is held, and the timers to release them early. */
export class RefusalHolds {
  private readonly perCaller = new Map<string, number>();
  private readonly releases = new Set<() => void>();
  private closed = false;

  constructor(private readonly limits: RefusalHoldLimits) {}

  get heldCount(): number {
    return this.releases.size;
  }

  /**
   * Holds for `ms` (capped) and resolves with the ms actually held; resolves at once with 0 when
   * holding is off or a bound is reached. `abandoned` fires when the client goes away.
   */
  hold(caller: string, ms: number, abandoned: (release: () => void) => void): { outcome: HoldOutcome; done: Promise<number> } {
    // Between half and all of it: callers refused together must not all come back together.
    const wait = Math.min(ms, this.limits.maxMs) * (0.5 + Math.random() / 2);
    if (wait <= 0 || this.closed) return { outcome: 'off', done: Promise.resolve(0) };
    const current = this.perCaller.get(caller) ?? 0;
    if (current >= this.limits.perCaller || this.releases.size >= this.limits.total) return { outcome: 'over_cap', done: Promise.resolve(0) };
    this.perCaller.set(caller, current + 1);
    const started = performance.now();
    const done = new Promise<number>((resolve) => {
      const release = (): void => {
        if (!this.releases.delete(release)) return;
        clearTimeout(timer);
        const left = (this.perCaller.get(caller) ?? 1) - 1;
        if (left <= 0) this.perCaller.delete(caller);
        else this.perCaller.set(caller, left);
        resolve(performance.now() - started);
      };
      const timer = setTimeout(release, wait);
      this.releases.add(release);
      abandoned(release);
    });
    return { outcome: 'held', done };
  }

  /** Shutdown: every held answer goes out now, and no new one is held. */
  releaseAll(): void {
    this.closed = true;
    for (const release of [...this.releases]) release();
  }
}

/**
 * Registered after the audit trail in the same scope, so it runs after the event is written.
 * `onHold` counts outcomes (a metric). A callback hook, not an async one: it runs on every
 * /v1 answer, and only a 429 has anything to wait for.
 */
export function registerRefusalHold(scope: FastifyInstance, holds: RefusalHolds, onHold: (outcome: HoldOutcome) => void): void {
  scope.addHook('onSend', (request: FastifyRequest, reply: FastifyReply, payload: unknown, done: (error: null, payload: unknown) => void) => {
    const retryAfterSeconds = reply.statusCode === 429 ? Number(reply.getHeader('retry-after')) : Number.NaN;
    if (!Number.isFinite(retryAfterSeconds) || retryAfterSeconds <= 0) {
      done(null, payload);
      return;
    }
    const caller = request.principal ? `principal:${principalKey(request.principal)}` : `address:${addressBucket(request.ip)}`;
    const { outcome, done: held } = holds.hold(caller, retryAfterSeconds * 1000, (release) => reply.raw.once('close', release));
    onHold(outcome);
    void held.then((heldMs) => {
      if (heldMs > 0) reply.header('retry-after', String(Math.max(0, Math.ceil(retryAfterSeconds - heldMs / 1000))));
      done(null, payload);
    });
  });
}
