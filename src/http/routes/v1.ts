/**
 * The /v1 API: per-principal in-flight cap and request turns, rate limit, then one file per
 * endpoint.
 */
import type { FastifyInstance } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { principalKey } from '../../authz/principal-key.js';
import { registerAdminRoutes } from './admin/index.js';
import { registerBatch } from './batch.js';
import { registerBinary } from './binary.js';
import type { V1Deps } from './common.js';
import { registerDataKey } from './datakey.js';
import { registerDecrypt } from './decrypt.js';
import { registerEncrypt } from './encrypt.js';
import { registerKeys } from './keys.js';
import { registerRewrap } from './rewrap.js';
import { registerStream } from './stream.js';
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
    timeWindow: deps.config.RATE_LIMIT_WINDOW_MS,
    keyGenerator: (request) => `principal:${request.principal ? principalKey(request.principal) : 'anonymous'}`,
    errorResponseBuilder: (_request, context) =>
      new ProblemError(429, 'RateLimited', `rate limit of ${context.max} requests per ${context.after} exceeded for this principal`, Math.ceil(context.ttl / 1000)),
  });
  registerEncrypt(scope, deps);
  registerDecrypt(scope, deps);
  await registerBinary(scope, deps);
  await registerStream(scope, deps);
  registerBatch(scope, deps);
  registerRewrap(scope, deps);
  registerDataKey(scope, deps);
  registerKeys(scope, deps);
  registerAdminRoutes(scope, deps);
}
