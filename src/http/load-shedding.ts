/**
 * Load shedding (@fastify/under-pressure): 503 + Retry-After before any other work when the
 * event loop lags or memory runs short (MAX_EVENT_LOOP_DELAY_MS, MAX_HEAP_USED_BYTES,
 * MAX_RSS_BYTES; see memory-limits.ts). Routes that must never be shed say so with
 * `config: NOT_SHED`.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import underPressure from '@fastify/under-pressure';
import type { Config } from '../config.js';
import { memoryLimits } from './memory-limits.js';
import { prepareProblem } from './send-problem.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** @fastify/under-pressure's per-route handler; one that sends nothing lets the request through. */
    pressureHandler?: (request: FastifyRequest, reply: FastifyReply, type: string, value: number | undefined) => void;
  }
}

/** A route's config that keeps it served under pressure. */
export const NOT_SHED = { pressureHandler: () => undefined };

export async function registerLoadShedding(app: FastifyInstance, config: Config): Promise<void> {
  const memory = memoryLimits(config);
  if (config.MAX_EVENT_LOOP_DELAY_MS === 0 && memory.maxHeapUsedBytes === 0 && memory.maxRssBytes === 0) return;
  await app.register(underPressure, {
    // 0 turns a check off (under-pressure's own convention).
    maxEventLoopDelay: config.MAX_EVENT_LOOP_DELAY_MS,
    maxHeapUsedBytes: memory.maxHeapUsedBytes,
    maxRssBytes: memory.maxRssBytes,
    retryAfter: 5,
    exposeStatusRoute: false,
    // Returning the body (not sending it here) makes under-pressure send it and stop the
    // request: a handler that sends and returns nothing lets the later hooks run as well
    // (authentication, limits, the audit trail). Its typings say void; its code sends any
    // non-null result.
    pressureHandler: ((request: FastifyRequest, reply: FastifyReply) =>
      prepareProblem(request, reply, { status: 503, code: 'Overloaded', detail: 'the service is overloaded; retry later', retryAfterSeconds: 5 })) as unknown as (
      request: FastifyRequest,
      reply: FastifyReply,
    ) => void,
  });
}
