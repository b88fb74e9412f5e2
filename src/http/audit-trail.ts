/**
 * The audit trail's HTTP side: every /v1 request has exactly one event written in onSend,
 * whether it succeeded, was denied, or failed (repeated authentication failures from one
 * address are counted into one summary event instead: auth-failures.ts). The event is built
 * from the request (who, from where), the facts its operation returned (recordOutcome) and the
 * problem it got, if any. onSend runs for handler results and error replies alike, before a
 * byte of the response leaves, which is what makes the audit fail-closed: if the event cannot
 * be written, the response is replaced by a 503 and no plaintext or ciphertext goes out.
 *
 * A streaming request has a second event, written here too once its stream is over
 * (stream-audit.ts): the route hands over the session with recordStream and its body with
 * watchStream, and the started event written in onSend lets the ended one follow.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiEventName, AuditEventInput } from '../audit/event.js';
import type { ServiceMetrics } from '../metrics/metrics.js';
import type { Outcome } from '../operations/operation.js';
import type { StreamSession } from '../operations/stream.js';
import type { Readable } from 'node:stream';
import type { AuditSink } from '../audit/sink.js';
import { toAuditEvent, type AuditState } from './audit-event.js';
import { StreamAudit, type StreamEventWriter } from './streams/stream-audit.js';
import { prepareProblem } from './send-problem.js';
import { ATTR, inSpan, spansEnabled, traceIdsOf } from '../telemetry/spans.js';

declare module 'fastify' {
  interface FastifyRequest {
    audit: AuditState | undefined;
  }
  interface FastifyContextConfig {
    eventName?: ApiEventName;
  }
}

/** The stream of a streaming request, from recordStream on. */
const streams = new WeakMap<FastifyRequest, StreamAudit>();

export interface AuditTrailDeps {
  audit: AuditSink;
  metrics: ServiceMetrics;
}

/** Registered before authentication, whose failures it records. */
export function registerAuditTrail(scope: FastifyInstance, deps: AuditTrailDeps): void {
  scope.decorateRequest('audit', undefined);

  scope.addHook('onRequest', (request, _reply, done) => {
    request.audit = {};
    done();
  });

  scope.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const state = request.audit;
    if (!state) return payload;
    request.audit = undefined;
    const stream = streams.get(request);
    try {
      await writeTraced(deps, toAuditEvent(request, reply.statusCode, state));
      deps.metrics.auditEvents.inc();
      if (stream) {
        // An error answer instead of the stream (a failure after recordStream): nothing streams.
        if (payload === stream.body) stream.started(streamWriter(request, deps));
        else stream.abandon();
      }
      return payload;
    } catch (error) {
      stream?.abandon();
      deps.metrics.auditFailures.inc();
      request.log.error({ errorName: (error as Error).name }, 'audit event could not be written: failing the request closed');
      return JSON.stringify(
        prepareProblem(request, reply, {
          status: 503,
          code: 'AuditUnavailable',
          detail: 'the audit log cannot be written; the result was withheld',
          retryAfterSeconds: 5,
        }),
      );
    }
  });
}

/** Keeps the operation's facts for the audit event, then gives its result or throws its error. */
export function recordOutcome<R>(request: FastifyRequest, outcome: Outcome<R>): R {
  if (request.audit) request.audit.facts = outcome.facts;
  if (!outcome.ok) throw outcome.error;
  return outcome.value;
}

/**
 * recordOutcome for the streaming routes: the session's facts are the started event's, and the
 * stream's end will be written as a second event. A refused stream has one event, no phase.
 */
export function recordStream(request: FastifyRequest, outcome: Outcome<StreamSession>): StreamSession {
  if (!outcome.ok) delete outcome.facts.stream;
  const session = recordOutcome(request, outcome);
  streams.set(request, new StreamAudit(request, session, outcome.facts));
  return session;
}

/** The body the route sends for the session recordStream took (the stream's ends are watched from it). */
export function watchStream(request: FastifyRequest, reply: FastifyReply, body: Readable): void {
  streams.get(request)?.watch(reply, body);
}

/** Ends a recorded stream that has not finished (an idle timeout); false if there is none. */
export function failStream(request: FastifyRequest, error: Error): boolean {
  const stream = streams.get(request);
  if (!stream) return false;
  stream.failed(error);
  return true;
}

function streamWriter(request: FastifyRequest, deps: AuditTrailDeps): StreamEventWriter {
  return {
    write: async (event) => {
      try {
        await writeTraced(deps, event);
        deps.metrics.auditEvents.inc();
      } catch (error) {
        deps.metrics.auditFailures.inc();
        throw error;
      }
    },
    ended: (outcome, elapsedMs) => {
      const route = request.routeOptions.url ?? 'unmatched';
      deps.metrics.streamOutcomes.inc({ route, outcome });
      // A stream cut after its 200 never finishes its response, so the onResponse hook that
      // observes every other request does not run for it: observed here instead.
      if (outcome !== 'completed') deps.metrics.httpDuration.observe({ method: request.method, route, status_code: '200' }, elapsedMs / 1000);
    },
  };
}

/**
 * Writes the event in the audit write's span, and puts that span's trace and span ids in the
 * event (`additionalEventData.trace`): from an audit event to its trace, whose KMS spans carry
 * the request ids CloudTrail records. Tracing off: no span, no ids, the event written directly.
 */
function writeTraced(deps: AuditTrailDeps, event: AuditEventInput): Promise<void> {
  if (!spansEnabled()) return deps.audit.write(event);
  return inSpan('audit.write', { [ATTR.auditEventName]: event.eventName }, async (span) => {
    const ids = traceIdsOf(span);
    if (ids) event.additionalEventData.trace = ids;
    await deps.audit.write(event);
  });
}
