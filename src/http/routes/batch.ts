/**
 * POST /v1/encrypt/batch and /v1/decrypt/batch: each item goes through exactly the path of
 * the single-item route (authorization included); one bad item never fails the others.
 * Items run concurrently, so items sharing a partition share one KMS call.
 *
 * Audit: one event for the HTTP request, with per-item outcomes in
 * additionalEventData.items (docs/AUDIT.md).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { KmsTrace } from '../../envelope/kms-trace.js';
import type { AuditItemOutcome } from '../audit-record.js';
import { AccessDeniedError } from '../key-guard.js';
import { decryptItem, encryptItem, type Caller, type ItemNotes } from '../operations.js';
import { describeError } from '../problem.js';
import {
  DECRYPT_BATCH_EXAMPLES,
  DecryptBody,
  DecryptBatchResponse,
  ENCRYPT_BATCH_EXAMPLES,
  EncryptBody,
  EncryptBatchResponse,
} from '../schemas.js';
import { COMMON_ERRORS, SECURITY, callerOf, type V1Deps } from './common.js';

type ItemError = { error: { code: string; status: number; detail: string } };
type ItemOperation<I, R> = (caller: Caller, item: I, trace: KmsTrace, notes: ItemNotes) => Promise<R>;

export function registerBatch(scope: FastifyInstance, deps: V1Deps): void {
  const maxItems = deps.config.BATCH_MAX_ITEMS;
  const typed = scope.withTypeProvider<TypeBoxTypeProvider>();
  const description = `At most ${maxItems} items (BATCH_MAX_ITEMS). Results come back in input order; a failed item ` +
    'carries `error` with the code and status the single-item endpoint would have answered.';

  typed.post(
    '/encrypt/batch',
    {
      config: { eventName: 'EncryptBatch' },
      schema: {
        operationId: 'encryptBatch',
        tags: ['envelope'],
        summary: 'Encrypt many payloads',
        description,
        security: SECURITY,
        body: Type.Object({ items: Type.Array(EncryptBody, { minItems: 1, maxItems }) }, { additionalProperties: false }),
        bodyExamples: ENCRYPT_BATCH_EXAMPLES,
        response: { 200: EncryptBatchResponse, ...COMMON_ERRORS },
      },
    },
    async (request) => ({
      results: await runBatch(request, request.body.items, (caller, item, trace, notes) => encryptItem(deps.operations, caller, item, trace, notes)),
    }),
  );

  typed.post(
    '/decrypt/batch',
    {
      config: { eventName: 'DecryptBatch' },
      schema: {
        operationId: 'decryptBatch',
        tags: ['envelope'],
        summary: 'Decrypt many ciphertexts',
        description,
        security: SECURITY,
        body: Type.Object({ items: Type.Array(DecryptBody, { minItems: 1, maxItems }) }, { additionalProperties: false }),
        bodyExamples: DECRYPT_BATCH_EXAMPLES,
        response: { 200: DecryptBatchResponse, ...COMMON_ERRORS },
      },
    },
    async (request) => ({
      results: await runBatch(request, request.body.items, (caller, item, trace, notes) => decryptItem(deps.operations, caller, item, trace, notes)),
    }),
  );
}

async function runBatch<I, R>(request: FastifyRequest, items: I[], operation: ItemOperation<I, R>): Promise<(R | ItemError)[]> {
  const record = request.audit!;
  const caller = callerOf(request);
  const outcomes: AuditItemOutcome[] = [];
  record.requestParameters.items = items.length;
  const results = await Promise.all(
    items.map(async (item, index) => {
      const trace = record.trace.forItem();
      const notes: ItemNotes = {};
      const outcome: AuditItemOutcome = { index, status: 200, kmsRequestIds: [] };
      outcomes.push(outcome);
      try {
        return await operation(caller, item, trace, notes);
      } catch (error) {
        const problem = describeError(error);
        if (problem.code === 'InternalError') request.log.error({ errorName: (error as Error)?.name, stack: (error as Error)?.stack }, 'unhandled error in batch item');
        outcome.status = problem.status;
        outcome.errorCode = problem.code;
        if (error instanceof AccessDeniedError) outcome.denyReason = error.reason;
        return { error: { code: problem.code, status: problem.status, detail: problem.detail } };
      } finally {
        Object.assign(outcome, {
          keyId: notes.resolvedKeyId ?? notes.keyId,
          ruleId: notes.ruleId,
          encryptionContext: notes.context,
          dataKeyId: notes.dataKey?.dataKeyId,
          cacheHit: notes.dataKey?.cacheHit,
          kmsRequestIds: trace.requestIds,
        });
        for (const id of trace.requestIds) record.trace.add(id);
      }
    }),
  );
  record.items = outcomes.sort((a, b) => a.index - b.index);
  record.responseElements = { items: results.length, failedItems: outcomes.filter((outcome) => outcome.status >= 400).length };
  return results;
}
