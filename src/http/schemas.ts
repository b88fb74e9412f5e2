/**
 * TypeBox schemas for every request body and every response status. They drive validation,
 * serialization and the OpenAPI document (openapi.yaml is generated from them).
 */
import { Type, type Static } from 'typebox';
import { ENVELOPE_LIMITS } from '../envelope/limits.js';

/** Standard base64 (RFC 4648 section 4) with padding; anything else is a 400. */
const BASE64_PATTERN = '^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$';

export const Base64 = (description: string, example?: string) =>
  Type.String({ pattern: BASE64_PATTERN, description, contentEncoding: 'base64', ...(example ? { examples: [example] } : {}) });

export const KeyId = Type.String({
  minLength: 1,
  maxLength: ENVELOPE_LIMITS.maxKeyArnBytes,
  pattern: '^[A-Za-z0-9:/_+=,.@-]+$',
  description: 'A KMS key alias (`alias/...`), key id or ARN.',
  examples: ['alias/default'],
});

export const EncryptionContextSchema = Type.Record(
  Type.String({ minLength: 1, maxLength: ENVELOPE_LIMITS.maxContextKeyBytes }),
  Type.String({ maxLength: ENVELOPE_LIMITS.maxContextValueBytes }),
  {
    maxProperties: ENVELOPE_LIMITS.maxContextPairs,
    description:
      'The KMS encryption context: sent to KMS, visible in CloudTrail, and a cache partition. Keep it coarse ' +
      '(tenant, purpose); put per-record data in `aad`.',
    examples: [{ tenant: 'a', purpose: 'billing' }],
  },
);

export const Ciphertext = Type.String({
  minLength: 1,
  pattern: '^[A-Za-z0-9:_-]+$',
  description: 'An opaque ciphertext produced by this service (`ev1:` + base64url). See docs/FORMAT.md.',
});

const Aad = Base64('Per-message associated data (base64). Authenticated locally, never sent to KMS; required again to decrypt.', 'b3JkZXItNDI=');

export const EncryptBody = Type.Object(
  {
    plaintext: Base64('The bytes to encrypt, base64.', 'aGVsbG8gd29ybGQ='),
    keyId: Type.Optional(KeyId),
    context: Type.Optional(EncryptionContextSchema),
    aad: Type.Optional(Aad),
  },
  { additionalProperties: false },
);
export type EncryptBody = Static<typeof EncryptBody>;

export const EncryptResponse = Type.Object({
  ciphertext: Ciphertext,
  keyId: Type.String({ description: 'ARN of the KMS key that wraps the data key.' }),
});

export const DecryptBody = Type.Object(
  {
    ciphertext: Ciphertext,
    context: Type.Optional(
      Type.Record(Type.String({ minLength: 1, maxLength: ENVELOPE_LIMITS.maxContextKeyBytes }), Type.String({ maxLength: ENVELOPE_LIMITS.maxContextValueBytes }), {
        maxProperties: ENVELOPE_LIMITS.maxContextPairs,
        description: 'If given, must equal the context stored in the ciphertext (422 otherwise).',
      }),
    ),
    aad: Type.Optional(Aad),
  },
  { additionalProperties: false },
);
export type DecryptBody = Static<typeof DecryptBody>;

export const DecryptResponse = Type.Object({
  plaintext: Type.String({ description: 'The decrypted bytes, base64.', contentEncoding: 'base64' }),
  keyId: Type.String({ description: 'ARN of the KMS key that wrapped the data key.' }),
  context: Type.Record(Type.String(), Type.String(), { description: 'The encryption context stored in the ciphertext.' }),
});

export const RewrapBody = Type.Object(
  {
    ciphertext: Ciphertext,
    keyId: Type.Optional(KeyId),
    context: Type.Optional(
      Type.Record(Type.String({ minLength: 1, maxLength: ENVELOPE_LIMITS.maxContextKeyBytes }), Type.String({ maxLength: ENVELOPE_LIMITS.maxContextValueBytes }), {
        maxProperties: ENVELOPE_LIMITS.maxContextPairs,
        description: 'If given, must equal the context stored in the ciphertext. Rewrap never changes the context.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type RewrapBody = Static<typeof RewrapBody>;

export const DataKeyBody = Type.Object(
  {
    keyId: Type.Optional(KeyId),
    context: Type.Optional(EncryptionContextSchema),
    includePlaintext: Type.Optional(
      Type.Boolean({ default: false, description: 'Return the plaintext data key too (needs the `datakey:plaintext` grant).' }),
    ),
  },
  { additionalProperties: false },
);
export type DataKeyBody = Static<typeof DataKeyBody>;

export const DataKeyResponse = Type.Object({
  keyId: Type.String({ description: 'ARN of the KMS key that wrapped the data key.' }),
  wrappedKey: Type.String({ description: 'The KMS CiphertextBlob of the data key, base64.', contentEncoding: 'base64' }),
  plaintextKey: Type.Optional(
    Type.String({ description: 'The 32-byte data key, base64. Only when `includePlaintext` was asked for and granted.', contentEncoding: 'base64' }),
  ),
});

export const ItemError = Type.Object({
  error: Type.Object({
    code: Type.String({ description: 'The same codes as the single-item endpoints use.' }),
    status: Type.Integer({ description: 'The status the single-item endpoint would have answered.' }),
    detail: Type.String(),
  }),
});

export const EncryptBatchBody = Type.Object({ items: Type.Array(EncryptBody, { minItems: 1 }) }, { additionalProperties: false });
export type EncryptBatchBody = Static<typeof EncryptBatchBody>;
export const DecryptBatchBody = Type.Object({ items: Type.Array(DecryptBody, { minItems: 1 }) }, { additionalProperties: false });
export type DecryptBatchBody = Static<typeof DecryptBatchBody>;

export const EncryptBatchResponse = Type.Object({
  results: Type.Array(Type.Union([EncryptResponse, ItemError]), { description: 'One result per item, in input order.' }),
});
export const DecryptBatchResponse = Type.Object({
  results: Type.Array(Type.Union([DecryptResponse, ItemError]), { description: 'One result per item, in input order.' }),
});

export const KeysResponse = Type.Object({
  keys: Type.Array(
    Type.Object({
      keyId: Type.String({ description: 'Key ARN.' }),
      aliases: Type.Array(Type.String()),
      operations: Type.Array(Type.String(), { description: 'What this caller may do with the key.' }),
    }),
  ),
});

export const Problem = Type.Object(
  {
    type: Type.String({ description: 'A URI naming the problem type.' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String({ description: 'Stable machine-readable error code.' }),
    requestId: Type.String({ description: 'Also the audit event\'s requestID.' }),
  },
  { $id: 'Problem', description: 'RFC 9457 problem details. Never contains plaintext or key material.' },
);
export type Problem = Static<typeof Problem>;

export const Health = Type.Object({ status: Type.String() });
export const Readiness = Type.Object({
  status: Type.String(),
  checks: Type.Object({ kms: Type.String(), audit: Type.String() }),
});
