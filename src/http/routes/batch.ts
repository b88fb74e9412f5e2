/**
 * POST /v1/encrypt/batch and /v1/decrypt/batch: each item goes through exactly the path of
 * the single-item route (authorization included); one bad item never fails the others.
 * Items run concurrently, so items sharing a partition share one KMS call.
 *
 * Validation is in two layers so that a malformed item fails alone: Fastify validates only the
 * envelope (`items` an array of 1 to BATCH_MAX_ITEMS), and each item is validated here against
 * the single-item body schema, with the app's own Ajv (request.compileValidationSchema: same
 * options, same linear-time base64 matcher). A bad item gets its 400 in `results`. The
 * OpenAPI document still shows the item schema (`documentedBody`), which is what clients send.
 *
 * Audit: one event for the HTTP request, with per-item outcomes in
 * additionalEventData.items (docs/AUDIT.md).
 */
import type { FastifyInstance, FastifyRequest, FastifySchemaValidationError } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { KmsTrace } from '../../envelope/kms-trace.js';
import type { AuditItemOutcome } from '../audit-record.js';
import { AccessDeniedError } from '../key-guard.js';
import { decryptItem, encryptItem, type Caller, type ItemNotes } from '../operations.js';
import { ProblemError, describeError } from '../problem.js';
import {
  DECRYPT_BATCH_EXAMPLES,
  DecryptBody,
  DecryptBatchResponse,
  ENCRYPT_BATCH_EXAMPLES,
  EncryptBody,
  EncryptBatchResponse,
  type DecryptBody as DecryptItem,
  type EncryptBody as EncryptItem,
} from '../schemas.js';
import { COMMON_ERRORS, SECURITY, callerOf, type V1Deps } from './common.js';

type ItemError = { error: { code: string; status: number; detail: string } };
type ItemOperation<I, R> = (caller: Caller, item: I, trace: KmsTrace, notes: ItemNotes) => Promise<R>;

/** What Fastify validates before the handler: the envelope only; each item is checked on its own. */
function batchEnvelope(maxItems: number) {
  return Type.Object({ items: Type.Array(Type.Unknown(), { minItems: 1, maxItems }) }, { additionalProperties: false });
}

/** What the OpenAPI document shows: the envelope with the item schema clients must follow. */
function documentedBatch(item: typeof EncryptBody | typeof DecryptBody, maxItems: number, route: string) {
  return Type.Object(
    {
      items: Type.Array(item, {
        minItems: 1,
        maxItems,
        description:
          `Each item is a ${route} body, validated on its own: an item that does not match gets its own 400 ` +
          '(`InvalidRequest`) in `results` and the others are served.',
      }),
    },
    { additionalProperties: false },
  );
}

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
        body: batchEnvelope(maxItems),
        documentedBody: documentedBatch(EncryptBody, maxItems, '/v1/encrypt'),
        bodyExamples: ENCRYPT_BATCH_EXAMPLES,
        response: { 200: EncryptBatchResponse, ...COMMON_ERRORS },
      },
    },
    async (request) => ({
      results: await runBatch(request, request.body.items, EncryptBody, (caller, item: EncryptItem, trace, notes) =>
        encryptItem(deps.operations, caller, item, trace, notes),
      ),
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
        body: batchEnvelope(maxItems),
        documentedBody: documentedBatch(DecryptBody, maxItems, '/v1/decrypt'),
        bodyExamples: DECRYPT_BATCH_EXAMPLES,
        response: { 200: DecryptBatchResponse, ...COMMON_ERRORS },
      },
    },
    async (request) => ({
      results: await runBatch(request, request.body.items, DecryptBody, (caller, item: DecryptItem, trace, notes) =>
        decryptItem(deps.operations, caller, item, trace, notes),
      ),
    }),
  );
}

async function runBatch<I, R>(
  request: FastifyRequest,
  items: unknown[],
  itemSchema: object,
  operation: ItemOperation<I, R>,
): Promise<(R | ItemError)[]> {
  const record = request.audit!;
  const caller = callerOf(request);
  const validate = request.compileValidationSchema(itemSchema, 'body');
  const outcomes: AuditItemOutcome[] = [];
  record.requestParameters.items = items.length;
  const results = await Promise.all(
    items.map(async (item, index) => {
      const trace = record.trace.forItem();
      const notes: ItemNotes = {};
      const outcome: AuditItemOutcome = { index, status: 200, kmsRequestIds: [] };
      outcomes.push(outcome);
      try {
        if (!validate(item)) throw invalidItem(validate.errors);
        return await operation(caller, item as I, trace, notes);
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

/**
 * A 400 for one item, worded like Fastify's for a whole body (`item/plaintext must match
 * pattern ...`). Ajv messages name the field and the rule, never the value.
 */
function invalidItem(errors: FastifySchemaValidationError[] | null | undefined): ProblemError {
  const first = errors?.[0];
  const detail = first ? `item${first.instancePath} ${first.message ?? 'is invalid'}` : 'the item is invalid';
  return new ProblemError(400, 'InvalidRequest', detail);
}
