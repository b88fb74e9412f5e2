/**
 * POST /v1/rewrap: moves a ciphertext to another KMS key (key rotation, tenant migration).
 * KMS ReEncrypt re-wraps the data key inside KMS; the payload is never decrypted and its bytes
 * are carried over unchanged. The caller needs `rewrap` on both the source key (judged on the
 * stored context) and the destination key, and a rule granting the source must accept that
 * destination (its `rewrapTo`, or by default a key the caller may encrypt to).
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { sameContext, toContext } from '../../envelope/context.js';
import { EnvelopeError } from '../../envelope/errors.js';
import { AccessDeniedError } from '../key-guard.js';
import { EncryptResponse, REWRAP_EXAMPLES, RewrapBody } from '../schemas.js';
import { COMMON_ERRORS, KEY_ERRORS, OPEN_ERRORS, SECURITY, callerOf, type V1Deps } from './common.js';

export function registerRewrap(scope: FastifyInstance, deps: V1Deps): void {
  scope.withTypeProvider<TypeBoxTypeProvider>().post(
    '/rewrap',
    {
      config: { eventName: 'ReEncrypt' },
      schema: {
        operationId: 'rewrap',
        tags: ['envelope'],
        summary: 'Re-wrap a ciphertext under another key, without decrypting it',
        description:
          'Only the wrapped data key changes (KMS ReEncrypt); the encrypted payload is carried over byte for byte. ' +
          '`keyId` is the destination (default key if omitted). The context never changes; if given it must equal the stored one.',
        security: SECURITY,
        body: RewrapBody,
        bodyExamples: REWRAP_EXAMPLES,
        response: { 200: EncryptResponse, ...COMMON_ERRORS, ...KEY_ERRORS, ...OPEN_ERRORS },
      },
    },
    async (request) => {
      const record = request.audit!;
      const caller = callerOf(request);
      const { guard, envelope: service, defaultKeyId } = deps.operations;
      const envelope = service.parse(request.body.ciphertext);
      const destination = request.body.keyId ?? defaultKeyId;
      record.requestParameters = {
        keyId: envelope.keyArn,
        destinationKeyId: destination,
        encryptionContext: envelope.context,
        ciphertextBytes: request.body.ciphertext.length,
      };
      const source = await guard.authorizeStoredKey(caller.policy, caller.principal, 'rewrap', envelope.keyArn, envelope.context, undefined, record.trace);
      if (request.body.context !== undefined && !sameContext(toContext(request.body.context), envelope.context)) {
        throw new EnvelopeError('ContextMismatch', 'the given context differs from the one stored in the ciphertext');
      }
      const target = await guard.authorizeRequestedKey(caller.policy, caller.principal, 'rewrap', destination, envelope.context, undefined, record.trace);
      // The destination relative to the source: one tenant's data must not land under another's key.
      const onward = caller.policy.decideRewrapDestination(caller.principal, {
        sourceKeyNames: await deps.directory.namesOf(envelope.keyArn, record.trace),
        destinationKeyNames: [destination, ...(await deps.directory.namesOf(target.keyArn, record.trace))],
        context: envelope.context,
        plaintextBytes: envelope.body.length,
      });
      if (!onward.allowed) throw new AccessDeniedError(onward.reason);
      record.ruleId = [...new Set([source.ruleId, target.ruleId, onward.ruleId])].join(',');
      const result = await service.rewrap(envelope, target.keyArn, record.trace);
      record.dataKey = result.dataKey;
      record.responseElements = { keyId: result.keyArn, ciphertextBytes: result.ciphertext.length };
      return { ciphertext: result.ciphertext, keyId: result.keyArn };
    },
  );
}
