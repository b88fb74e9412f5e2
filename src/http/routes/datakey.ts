/**
 * POST /v1/datakey: a fresh data key for callers that encrypt client-side. Wrapped only by
 * default; the plaintext key is returned only to principals granted `datakey:plaintext`.
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { validContext } from '../operations.js';
import { DATAKEY_EXAMPLES, DataKeyBody, DataKeyResponse } from '../schemas.js';
import { COMMON_ERRORS, KEY_ERRORS, SECURITY, callerOf, type V1Deps } from './common.js';

export function registerDataKey(scope: FastifyInstance, deps: V1Deps): void {
  scope.withTypeProvider<TypeBoxTypeProvider>().post(
    '/datakey',
    {
      config: { eventName: 'GenerateDataKey' },
      schema: {
        operationId: 'generateDataKey',
        tags: ['envelope'],
        summary: 'Generate a data key for client-side encryption',
        description:
          'Always a fresh key from KMS (never the cache). `wrappedKey` decrypts with KMS Decrypt and the same context. ' +
          '`includePlaintext: true` needs the `datakey:plaintext` grant; zero the key as soon as you are done with it.',
        security: SECURITY,
        body: DataKeyBody,
        bodyExamples: DATAKEY_EXAMPLES,
        response: { 200: DataKeyResponse, ...COMMON_ERRORS, ...KEY_ERRORS },
      },
    },
    async (request) => {
      const record = request.audit!;
      const caller = callerOf(request);
      const { guard, envelope, defaultKeyId } = deps.operations;
      const context = validContext(request.body.context);
      const includePlaintext = request.body.includePlaintext === true;
      const keyId = request.body.keyId ?? defaultKeyId;
      record.requestParameters = { keyId, encryptionContext: context, includePlaintext };
      const operation = includePlaintext ? 'datakey:plaintext' : 'datakey';
      const { keyArn, ruleId } = await guard.authorizeRequestedKey(caller.policy, caller.principal, operation, keyId, context, undefined, record.trace);
      record.ruleId = ruleId;
      const issued = await envelope.issueDataKey(keyArn, context, includePlaintext, record.trace);
      record.dataKey = issued.dataKey;
      record.responseElements = { keyId: issued.keyArn, wrappedKeyBytes: issued.wrappedKey.length };
      const response = {
        keyId: issued.keyArn,
        wrappedKey: issued.wrappedKey.toString('base64'),
        ...(issued.plaintextKey ? { plaintextKey: issued.plaintextKey.toString('base64') } : {}),
      };
      issued.plaintextKey?.fill(0);
      return response;
    },
  );
}
