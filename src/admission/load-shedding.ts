/**
 * Load shedding (@fastify/under-pressure): 503 Overloaded + Retry-After when the event loop lags
 * (MAX_EVENT_LOOP_DELAY_MS) or the process sheds for memory (memory-pressure.ts, polled as
 * under-pressure's healthCheck, with hysteresis). Routes that must never be shed say so with
 * `config: NOT_SHED`.
 *
 * /v1 requests are not refused at the door but right after authentication
 * (registerShedAfterAuthentication), so that each refusal is audited against its principal:
 * the first per principal, code and window as its own event, the rest in one summary
 * (refusal-summaries.ts). Anything else (an unknown path, /docs) is refused at the door.
 */
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import underPressure from '@fastify/under-pressure';
import type { Config } from '../config.js';
import type { MemoryPressure } from './memory-pressure.js';
import { ProblemError } from '../operations/errors.js';
import type { RefusalSummaries } from './refusal-summaries.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** @fastify/under-pressure's per-route handler; one that sends nothing lets the request through. */
    pressureHandler?: (request: FastifyRequest, reply: FastifyReply, type: string, value: number | undefined) => void;
  }
}

/** A route's config that keeps it served under pressure. */
export const NOT_SHED = { pressureHandler: () => undefined };

const RETRY_AFTER_SECONDS = 5;
/** How often memory is read (process.memoryUsage()). */
const MEMORY_SAMPLE_MS = 1_000;
const OVERLOADED = { status: 503, code: 'Overloaded', detail: 'the service is overloaded; retry later', retryAfterSeconds: RETRY_AFTER_SECONDS };

const shedMark = Symbol('shedAfterAuthentication');
type MaybeShed = FastifyRequest & { [shedMark]?: true };

/** The problem an overloaded instance answers, and the edge's way to prepare it as the body to send. */
export type Overloaded = typeof OVERLOADED;
export type PrepareProblem = (request: FastifyRequest, reply: FastifyReply, problem: Overloaded) => unknown;

export async function registerLoadShedding(
  app: FastifyInstance,
  config: Config,
  pressure: MemoryPressure,
  log: FastifyBaseLogger,
  prepareProblem: PrepareProblem,
): Promise<void> {
  await app.register(underPressure, {
    // 0 turns a check off (under-pressure's own convention).
    maxEventLoopDelay: config.MAX_EVENT_LOOP_DELAY_MS,
    // Memory is judged by the gate, with hysteresis, never by under-pressure's own thresholds.
    healthCheck: async () => {
      const was = pressure.shedding;
      const shedding = pressure.sample();
      if (shedding !== was) {
        const reading = pressure.last;
        const line = { heapUsedBytes: reading?.heapUsed, externalBytes: reading?.external, rssBytes: reading?.rss };
        if (shedding) log.warn(line, 'memory above its high-water mark: shedding /v1 requests, /readyz answers 503');
        else log.info(line, 'memory below its low-water mark: serving again');
      }
      return !shedding;
    },
    healthCheckInterval: MEMORY_SAMPLE_MS,
    retryAfter: RETRY_AFTER_SECONDS,
    exposeStatusRoute: false,
    // Returning the body (not sending it here) makes under-pressure send it and stop the
    // request: a handler that sends and returns nothing lets the later hooks run as well
    // (authentication, limits, the audit trail). Its typings say void; its code sends any
    // non-null result.
    pressureHandler: ((request: FastifyRequest, reply: FastifyReply) => prepareProblem(request, reply, OVERLOADED)) as unknown as (
      request: FastifyRequest,
      reply: FastifyReply,
    ) => void,
  });
}

/**
 * In the /v1 scope, after authentication: under pressure, its routes' requests go on to be
 * authenticated, then are refused here (before the in-flight cap, the rate limit or the body)
 * and audited against their principal.
 */
export function registerShedAfterAuthentication(scope: FastifyInstance, refusals: RefusalSummaries): void {
  scope.addHook('onRoute', (route) => {
    route.config = {
      ...route.config,
      pressureHandler: (request: FastifyRequest) => {
        (request as MaybeShed)[shedMark] = true;
      },
    };
  });
  scope.addHook('onRequest', (request, _reply, done) => {
    if ((request as MaybeShed)[shedMark] !== true) return done();
    refusals.note(request, OVERLOADED.code);
    done(new ProblemError(OVERLOADED.status, OVERLOADED.code, OVERLOADED.detail, OVERLOADED.retryAfterSeconds));
  });
}
