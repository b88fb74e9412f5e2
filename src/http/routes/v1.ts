/**
 * The /v1 API: per-principal in-flight cap and request turns, rate limit, the refusal of a
 * principal no rule could allow the route's operation (before its body), then one file per
 * endpoint. Every route but the streams buffers its body, within the request-buffer budget.
 */
import type { FastifyInstance } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { principalKey } from '../../authz/principal-key.js';
import { registerAdminRoutes } from './admin/register.js';
import { registerBatch } from './batch.js';
import { registerBinary } from './binary.js';
import type { V1Deps } from './common.js';
import { registerDataKey } from './datakey.js';
import { registerDecrypt } from './decrypt.js';
import { registerEncrypt } from './encrypt.js';
import { registerKeys } from './keys.js';
import { registerRewrap } from './rewrap.js';
import { registerStream } from './stream.js';
import { registerUnwrap } from './unwrap.js';
import { registerOperationGate } from '../../admission/operation-gate.js';
import { sharedRateLimitStore } from '../../admission/shared-rate-limit-store.js';
import { ProblemError } from '../problem.js';

export async function registerV1Routes(scope: FastifyInstance, deps: V1Deps): Promise<void> {
  deps.turns.register(scope);
  await scope.register(rateLimit, {
    global: true,
    // onRequest, like authentication and after it: the bucket is the principal, not the IP
    // (every pod of a calling service shares one identity and one budget), and a caller over
    // its limit is refused before its body is read, let alone parsed.
    hook: 'onRequest',
    max: deps.config.RATE_LIMIT_MAX,
    // With REDIS_URL, counted for the fleet (admission/shared-rate-limit-store.ts).
    ...(deps.sharedRateLimit && { store: sharedRateLimitStore(deps.sharedRateLimit) }),
    timeWindow: deps.config.RATE_LIMIT_WINDOW_MS,
    keyGenerator: (request) => `principal:${request.principal ? principalKey(request.principal) : 'anonymous'}`,
    errorResponseBuilder: (_request, context) =>
      new ProblemError(429, 'RateLimited', `rate limit of ${context.max} requests per ${context.after} exceeded for this principal`, Math.ceil(context.ttl / 1000)),
  });
  registerOperationGate(scope);
  // Two buffering scopes around the streams (which never buffer a body) keep the routes' order.
  const buffering = (routes: (buffered: FastifyInstance) => Promise<void>) =>
    // Named: Fastify names a plugin after its function, and a trace's handler span after the plugin.
    scope.register(async function bufferedRoutes(buffered) {
      deps.buffers.budget.register(buffered, deps.buffers.refusals);
      await routes(buffered);
    });
  await buffering(async (buffered) => {
    registerEncrypt(buffered, deps);
    registerDecrypt(buffered, deps);
    await registerBinary(buffered, deps);
  });
  await registerStream(scope, deps);
  await buffering(async (buffered) => {
    registerBatch(buffered, deps);
    registerRewrap(buffered, deps);
    registerDataKey(buffered, deps);
    registerUnwrap(buffered, deps);
    registerKeys(buffered, deps);
    registerAdminRoutes(buffered, deps);
  });
}
