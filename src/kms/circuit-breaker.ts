/**
 * A circuit breaker in front of KMS, as a KeyProvider decorator.
 *
 * Why: when KMS is down or throttling, every cold request would otherwise pay the full SDK
 * timeout × KMS_MAX_ATTEMPTS before it fails, holding a socket and a request slot, and would
 * keep hammering a KMS that cannot answer. After `failureThreshold` consecutive calls fail
 * with Unavailable, the circuit opens: calls fail at once with
 * CircuitOpenError (a KmsError 'Unavailable', so HTTP 503 with Retry-After = the cooldown
 * left) and never reach KMS. When the cooldown has passed the circuit is half-open: exactly
 * one call goes through as a probe while the others keep failing fast; its outcome closes the
 * circuit or opens it for another cooldown.
 *
 * What counts:
 * - failure: KmsError 'Unavailable' (KMS unreachable, timed out, 5xx), reported after the
 *   SDK's own retries, so one failed call is already KMS_MAX_ATTEMPTS failed attempts;
 * - success: any answer from KMS, including key-state and caller errors (KeyDisabled,
 *   KeyNotFound, AccessDenied, InvalidCiphertext...): KMS is up, the request was just refused;
 *   and throttling (Throttled): KMS is up and refusing *rate*, not failing. The breaker is
 *   everyone's, while throttling is provoked by whoever sends the most calls: counting it
 *   would let one principal's burst turn into 503s for every principal's cold requests for a
 *   whole cooldown. Throttled calls fail on their own (503 KmsThrottled, Retry-After 1, after
 *   the SDK's backoff), and per-principal KMS budgets (admission/kms-budget.ts) keep any one
 *   principal from provoking throttling in the first place;
 * - neither: anything that is not a KmsError (a bug in our code says nothing about KMS).
 *
 * Cached data keys never reach the provider, so while the circuit is open they keep serving
 * encrypts (within their caps) and decrypts of their data keys.
 *
 * Why hand-written rather than opossum: the state machine is ~100 lines, needs our failure
 * classification (by KmsError code, not by "any rejection"), a half-open state that admits one
 * probe, an injected clock for tests and the remaining cooldown for Retry-After; opossum's
 * model is a per-function wrapper with its own timeout, rolling-window percentages and event
 * emitter, most of which we would have to switch off.
 *
 * Placement (src/app.ts): breaker(instrumented(provider)), both built with decorateProvider. Calls refused by the breaker never
 * reach the instrumentation, so kms_requests_total and kms_request_duration_seconds count
 * only calls that were really sent to KMS; refusals are counted apart
 * (kms_circuit_rejections_total) and the state is the kms_circuit_state gauge.
 */
import { decorateProvider } from './decorate.js';
import { KmsError, isKmsError } from './errors.js';
import type { KeyProvider, KmsOperation } from './provider.js';

export type CircuitState = 'closed' | 'open' | 'half-open';

/** Prometheus encoding of the state (kms_circuit_state). */
export const CIRCUIT_STATE_VALUE: Readonly<Record<CircuitState, number>> = { closed: 0, open: 1, 'half-open': 2 };

export interface CircuitBreakerOptions {
  /** Consecutive Unavailable calls that open the circuit (KMS_BREAKER_FAILURES). */
  failureThreshold: number;
  /** How long the circuit stays open before it lets one probe through (KMS_BREAKER_COOLDOWN_MS). */
  cooldownMs: number;
  now?: () => number;
  /** Called on every transition (logging). */
  onStateChange?: (change: { from: CircuitState; to: CircuitState; consecutiveFailures: number }) => void;
  /** Called for every call refused without reaching KMS (metrics). */
  onReject?: (operation: KmsOperation) => void;
}

/**
 * The error a refused call gets: KMS is treated as unavailable without being asked.
 * `retryAfterMs` is the cooldown left (HTTP Retry-After).
 */
export class CircuitOpenError extends KmsError {
  constructor(
    readonly operation: KmsOperation,
    readonly retryAfterMs: number,
  ) {
    super('Unavailable', `KMS ${operation} not attempted: KMS failed repeatedly, retrying it in ${retryAfterMs} ms`);
  }
}

/** Breaker failures: KMS could not answer. Throttling is an answer (see "What counts"). */
export function isKmsOutage(error: unknown): boolean {
  return isKmsError(error) && error.code === 'Unavailable';
}

/** Retry-After for calls refused while the single half-open probe is in flight. */
const PROBE_RETRY_AFTER_MS = 1_000;

export class CircuitBreaker {
  private current: 'closed' | 'open' | 'half-open' = 'closed';
  private failures = 0;
  private openedAt = 0;
  /** Identity of the call admitted as the half-open probe, if one is in flight. */
  private probe: symbol | undefined;
  private readonly now: () => number;

  constructor(private readonly options: CircuitBreakerOptions) {
    if (!Number.isInteger(options.failureThreshold) || options.failureThreshold < 1) {
      throw new RangeError('failureThreshold must be a positive integer');
    }
    if (!(options.cooldownMs > 0)) throw new RangeError('cooldownMs must be positive');
    this.now = options.now ?? Date.now;
  }

  /** The state as a caller would meet it now: an open circuit whose cooldown is over is half-open. */
  get state(): CircuitState {
    if (this.current === 'open' && this.cooldownLeft() === 0) return 'half-open';
    return this.current;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  /** Runs `call` unless the circuit refuses it; records the outcome. */
  async run<T>(operation: KmsOperation, call: () => Promise<T>): Promise<T> {
    const ticket = this.admit(operation);
    let result: T;
    try {
      result = await call();
    } catch (error) {
      if (isKmsOutage(error)) this.recordFailure(ticket);
      else if (isKmsError(error)) this.recordSuccess(ticket);
      else this.release(ticket);
      throw error;
    }
    this.recordSuccess(ticket);
    return result;
  }

  /** Decides synchronously whether a call may go to KMS; throws CircuitOpenError if not. */
  private admit(operation: KmsOperation): symbol | undefined {
    if (this.current === 'open') {
      const left = this.cooldownLeft();
      if (left > 0) throw this.reject(operation, left);
      this.transition('half-open');
    }
    if (this.current === 'half-open') {
      if (this.probe) throw this.reject(operation, PROBE_RETRY_AFTER_MS);
      this.probe = Symbol(operation);
      return this.probe;
    }
    return undefined;
  }

  private reject(operation: KmsOperation, retryAfterMs: number): CircuitOpenError {
    this.options.onReject?.(operation);
    return new CircuitOpenError(operation, retryAfterMs);
  }

  private recordSuccess(ticket: symbol | undefined): void {
    if (ticket !== undefined) {
      if (ticket !== this.probe) return;
      this.probe = undefined;
      this.failures = 0;
      this.transition('closed');
      return;
    }
    // A call admitted while closed: an answer from KMS resets the count. One that was admitted
    // before the circuit opened and answers afterwards is stale and changes nothing.
    if (this.current === 'closed') this.failures = 0;
  }

  private recordFailure(ticket: symbol | undefined): void {
    if (ticket !== undefined) {
      if (ticket !== this.probe) return;
      this.probe = undefined;
      this.failures += 1;
      this.open();
      return;
    }
    if (this.current !== 'closed') return; // stale: the circuit already opened
    this.failures += 1;
    if (this.failures >= this.options.failureThreshold) this.open();
  }

  /** A probe that ended in a non-KMS error: let the next call probe instead. */
  private release(ticket: symbol | undefined): void {
    if (ticket !== undefined && ticket === this.probe) this.probe = undefined;
  }

  private open(): void {
    this.openedAt = this.now();
    this.transition('open');
  }

  private cooldownLeft(): number {
    return Math.max(0, this.openedAt + this.options.cooldownMs - this.now());
  }

  private transition(to: 'closed' | 'open' | 'half-open'): void {
    const from = this.current;
    this.current = to;
    if (from !== to || to === 'open') {
      this.options.onStateChange?.({ from, to, consecutiveFailures: this.failures });
    }
  }
}

/** Wraps every KMS operation of `provider` in `breaker`. */
export function withCircuitBreaker(provider: KeyProvider, breaker: CircuitBreaker): KeyProvider {
  return decorateProvider(provider, (operation, call) => breaker.run(operation, call));
}
