/**
 * Per principal: at most MAX_IN_FLIGHT_PER_PRINCIPAL requests in the service at once (over it:
 * 429 TooManyInFlight + Retry-After, audited like any refusal), and of those at most
 * REQUEST_CONCURRENCY_PER_PRINCIPAL being worked on; the others wait their turn in arrival
 * order. The cap is checked right after authentication, before the body is read; the turn is
 * taken once the body is in, before validation.
 *
 * Why turns: every principal shares one event loop, and each request admitted queues work on
 * it. Without turns, a caller with many connections has all of them at work together,
 * interleaved, each finishing later. With turns a waiting request costs a closure and nothing
 * else, and fewer requests interleaved finish sooner: one principal's own throughput goes up
 * (docs/BENCHMARKS.md).
 *
 * A request counts towards the in-flight cap until its response closes. Its turn lasts from
 * the end of its body until the answer is ready to send: it is given back on the answer's
 * onSend, on an error (so a refusal held by refusal-hold.ts does not keep it for the hold), or
 * when the client goes away, whichever comes first. So a slow upload never holds a turn (the
 * principal's other requests would wait behind it), and neither does a stream's body, which
 * flows after its response has started.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { principalKey } from '../authz/principal-key.js';
import { ProblemError } from '../operations/errors.js';
import type { SharedInFlight, SharedPlace } from './shared-in-flight.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route takes its turn itself, with RequestTurns.take (the decrypt stream: once its first segment is in). */
    takesOwnTurn?: boolean;
  }
}

export interface InFlightLimits {
  maxInFlight: number;
  /** Requests of one principal worked on at once. */
  concurrency: number;
}

interface PrincipalRequests {
  /** Requests whose response has not closed yet (waiting, holding a turn, or being sent). */
  inFlight: number;
  /** Requests holding a turn. */
  active: number;
  /** Requests waiting for one, in arrival order. */
  waiting: Place[];
}

/** One request's place: in flight from authentication until its response closes. */
interface Place {
  principal: PrincipalRequests;
  turn: 'none' | 'waiting' | 'active' | 'done';
  /** Continues the request once it has a turn. */
  proceed?: () => void;
  /** Fails the request (the client went away while it waited). */
  fail?: (error: Error) => void;
}

const placeOf = Symbol('requestTurnPlace');
type WithPlace = FastifyRequest & { [placeOf]?: Place };

export class RequestTurns {
  /**
   * By principalKey (method and id): an API key and a JWT subject of the same name are two
   * callers. Only principals with a request in flight: an entry goes when its last response closes.
   */
  private readonly principals = new Map<string, PrincipalRequests>();

  /** With `shared` (REDIS_URL), the cap holds for the fleet too (shared-in-flight.ts). */
  constructor(
    private readonly limits: InFlightLimits,
    private readonly shared?: SharedInFlight,
  ) {}

  /** Requests waiting for a turn, all principals together (a gauge). */
  get waitingCount(): number {
    let waiting = 0;
    for (const principal of this.principals.values()) waiting += principal.waiting.length;
    return waiting;
  }

  register(scope: FastifyInstance): void {
    scope.addHook('onRequest', (request, reply, done) => this.enter(request as WithPlace, reply, done));
    scope.addHook('preValidation', (request, _reply, done) => (request.routeOptions.config.takesOwnTurn ? done() : this.takeTurn(request as WithPlace, done)));
    // onError runs before the answer is sent, so a refusal held by refusal-hold.ts does not
    // keep its turn for the hold.
    scope.addHook('onError', (request, _reply, _error, done) => {
      this.endTurn(request as WithPlace);
      done();
    });
    // onSend: the answer is ready (its audit event written); sending it, a stream's whole body
    // included, is not the principal's work on the event loop but the network's.
    scope.addHook('onSend', (request, _reply, payload, done) => {
      this.endTurn(request as WithPlace);
      done(null, payload);
    });
  }

  /** Counts the request in flight, or refuses it over the cap. */
  private enter(request: WithPlace, reply: FastifyReply, done: (error?: Error) => void): void {
    if (request.principal === undefined) return done();
    const key = principalKey(request.principal);
    let principal = this.principals.get(key);
    if (principal === undefined) {
      principal = { inFlight: 0, active: 0, waiting: [] };
      this.principals.set(key, principal);
    }
    if (principal.inFlight >= this.limits.maxInFlight) {
      return done(new ProblemError(429, 'TooManyInFlight', `more than ${this.limits.maxInFlight} requests of this principal are in progress`, 1));
    }
    principal.inFlight += 1;
    const place: Place = { principal, turn: 'none' };
    request[placeOf] = place;
    let fleetPlace: SharedPlace | undefined;
    let closed = false;
    // 'close' comes once per response, finished or abandoned by the client, so nothing leaks.
    reply.raw.once('close', () => {
      closed = true;
      fleetPlace?.release();
      this.endTurn(request);
      principal.inFlight -= 1;
      if (principal.inFlight === 0 && this.principals.get(key) === principal) this.principals.delete(key);
    });
    if (!this.shared) return done();
    // The fleet's count (Redis); a refusal closes the response, which gives the local place back.
    this.shared.acquire(key).then(
      (place) => {
        if (place === 'full') {
          return done(new ProblemError(429, 'TooManyInFlight', `more than ${this.limits.maxInFlight} requests of this principal are in progress across the fleet`, 1));
        }
        if (place !== 'local') {
          fleetPlace = place;
          if (closed) place.release();
        }
        done();
      },
      (error: Error) => done(error),
    );
  }

  /** Waits for the request's turn (for a route with `takesOwnTurn`); rejects if the client goes away first. */
  take(request: FastifyRequest): Promise<void> {
    return new Promise((resolve, reject) => this.takeTurn(request as WithPlace, (error) => (error ? reject(error) : resolve())));
  }

  private takeTurn(request: WithPlace, done: (error?: Error) => void): void {
    const place = request[placeOf];
    if (place === undefined || place.turn !== 'none') return done();
    const start = (): void => {
      place.turn = 'active';
      place.principal.active += 1;
      done();
    };
    if (place.principal.active < this.limits.concurrency) return start();
    place.turn = 'waiting';
    place.proceed = start;
    place.fail = done;
    place.principal.waiting.push(place);
  }

  private endTurn(request: WithPlace): void {
    const place = request[placeOf];
    if (place === undefined) return;
    const { principal } = place;
    const was = place.turn;
    place.turn = 'done';
    if (was === 'active') {
      principal.active -= 1;
      const next = principal.waiting.shift();
      next?.proceed!();
    } else if (was === 'waiting') {
      // The client went away while waiting: its place is freed, and the request ends here
      // (answered, audited, to no one) instead of taking a turn it can no longer use.
      const at = principal.waiting.indexOf(place);
      if (at >= 0) principal.waiting.splice(at, 1);
      place.fail!(new ProblemError(429, 'TooManyInFlight', 'the client went away while its request waited for a turn', 1));
    }
  }
}
