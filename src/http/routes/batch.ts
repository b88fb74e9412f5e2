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
import type { BatchItemOutcome } from '../../operations/audit-facts.js';
import type { Outcome, Caller } from '../../operations/operation.js';
import { recordOutcome } from '../audit-trail.js';
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
} from '../schemas/schemas.js';
import { COMMON_ERRORS, SECURITY, callerOf, type V1Deps } from './common.js';
import { decryptJson } from './decrypt.js';
import { encryptJson } from './encrypt.js';

type ItemError = { error: { code: string; status: number; detail: string } };
type ItemOperation<I, R> = (caller: Caller, item: I) => Promise<Outcome<R>>;

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
      results: await runBatch(request, deps, request.body.items, EncryptBody, (caller, item: EncryptItem) => encryptJson(deps.operations, caller, item)),
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
      results: await runBatch(request, deps, request.body.items, DecryptBody, (caller, item: DecryptItem) => decryptJson(deps.operations, caller, item)),
    }),
  );
}

/**
 * Runs every item as its own operation, each with its own KMS context (its own request ids,
 * the same payer), and returns the request's outcome: the results in input order, and audit
 * facts that carry each item's outcome and every item's KMS request ids.
 */
async function runBatch<I, R>(
  request: FastifyRequest,
  deps: V1Deps,
  items: unknown[],
  itemSchema: object,
  operation: ItemOperation<I, R>,
): Promise<(R | ItemError)[]> {
  const caller = callerOf(request, deps);
  const validate = request.compileValidationSchema(itemSchema, 'body');
  const outcomes: BatchItemOutcome[] = [];
  const results = await Promise.all(
    items.map(async (item, index) => {
      const outcome: BatchItemOutcome = { index, status: 200, kmsRequestIds: [] };
      outcomes.push(outcome);
      const itemCaller = { ...caller, kms: caller.kms.forItem() };
      const done: Outcome<R> = validate(item)
        ? await operation(itemCaller, item as I)
        : { ok: false, error: invalidItem(validate.errors), facts: { requestParameters: {}, kmsRequestIds: [] } };
      const { facts } = done;
      let result: R | ItemError;
      if (done.ok) {
        result = done.value;
      } else {
        const problem = describeError(done.error);
        if (problem.code === 'InternalError') request.log.error({ errorName: (done.error as Error)?.name, stack: (done.error as Error)?.stack }, 'unhandled error in batch item');
        outcome.status = problem.status;
        outcome.errorCode = problem.code;
        if (facts.denyReason) outcome.denyReason = facts.denyReason;
        result = { error: { code: problem.code, status: problem.status, detail: problem.detail } };
      }
      Object.assign(outcome, {
        keyId: facts.resolvedKeyId ?? facts.requestParameters.keyId,
        ruleId: facts.ruleId,
        encryptionContext: facts.requestParameters.encryptionContext,
        dataKeyId: facts.dataKey?.dataKeyId,
        cacheHit: facts.dataKey?.cacheHit,
        kmsRequestIds: facts.kmsRequestIds,
      });
      for (const id of facts.kmsRequestIds) caller.kms.add(id);
      return result;
    }),
  );
  const failedItems = outcomes.filter((outcome) => (outcome.status ?? 200) >= 400).length;
  return recordOutcome(request, {
    ok: true,
    value: results,
    facts: {
      requestParameters: { items: items.length },
      responseElements: { items: results.length, failedItems },
      items: outcomes.sort((a, b) => a.index - b.index),
      kmsRequestIds: caller.kms.requestIds,
    },
  });
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
