/**
 * TypeBox schemas for every request body and every response status. They drive validation,
 * serialization and the OpenAPI document (openapi.yaml is generated from them).
 */
import { Type, type Static } from 'typebox';
import { ENVELOPE_LIMITS } from '../../format/limits.js';

/** Standard base64 (RFC 4648 section 4) with padding; anything else is a 400. */
export const BASE64_PATTERN = '^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$';

// ---- Example values for the OpenAPI document ----------------------------------------------
// Real outputs of a dev-mode instance (local provider, dev-token), so a reader can follow one
// value through encrypt -> decrypt -> rewrap. They only decrypt against the keystore that made
// them, so openapi.yaml stays deterministic while an instance on the local provider serves the
// same examples made by itself (src/http/openapi/live-examples.ts): there they run as is.

export const EXAMPLE_KEY_ARN = 'arn:aws:kms:local:000000000000:key/9cc362ea-dcfb-4c01-8b24-b27180e10227';
/** "hello world" under alias/default, no context, no aad. */
export const EXAMPLE_CIPHERTEXT =
  'ev1:AQEAR2Fybjphd3M6a21zOmxvY2FsOjAwMDAwMDAwMDAwMDprZXkvOWNjMzYyZWEtZGNmYi00YzAxLThiMjQtYjI3MTgwZTEwMjI3AE0BnMNi6tz7TAGLJLJxgOECJyvdR22K9YvNTFztkL-8-x73MPDlGY3h66QQitESXhodT6F_QNEXUtfR3V7XKX6bi_RDznV5XeCCiFb_BAAAyzQYWKWsyPU_ljqxggkk7VPIdKT6mLq-kLM8aB9-WSEndp6ZOo760pgVoA4POU_Ws0LgaM31HuRemsP33OzEY0SUaYgf4EwZywVlxFWWIlmUV3GuX41KYB60yZxCulLPdf48WPtxxA';
/** "hello world" under alias/default with context {tenant: acme, purpose: billing} and aad "order-42". */
export const EXAMPLE_CIPHERTEXT_BOUND =
  'ev1:AQEAR2Fybjphd3M6a21zOmxvY2FsOjAwMDAwMDAwMDAwMDprZXkvOWNjMzYyZWEtZGNmYi00YzAxLThiMjQtYjI3MTgwZTEwMjI3AE0BnMNi6tz7TAGLJLJxgOECJ7H1XNgI1bacykrAOpAV5yG_di75DOjw0IJB_70UXAX14O7-rVg8QEj3-1Y1KI8cq1PcXPQ0-FbyDqpOHgACAAdwdXJwb3NlAAdiaWxsaW5nAAZ0ZW5hbnQABGFjbWVuUzRs-p73SOGRr5Qs4ZGPu4APrTHa7k67qAIl6uER8dHondlW7vqhPLglGGYhF3NmWHQRj4iN43-7dNc2GxjRuZwyeTEA2-xe3XNqf3628g5xG2ttYl_Y3Y9FcPijYTJ4AJ7ILUc1';
/** A data key wrapped by alias/default, no context (/v1/datakey's answer, /v1/unwrap's example). */
export const EXAMPLE_WRAPPED_KEY = 'AZzDYurc+0wBiySycYDhAicNH7UlKKUMVDFOT5XlKD5xLO7v89Xb3b+NH1fwA6J1Hyga2HH/jr1r93O668Y2plA+8uw9C+s0a3K336Y=';
export const EXAMPLE_HELLO = 'aGVsbG8gd29ybGQ='; // "hello world"
export const EXAMPLE_AAD = 'b3JkZXItNDI='; // "order-42"
export const EXAMPLE_CONTEXT = { tenant: 'acme', purpose: 'billing' };

/**
 * A named request example: shown in Swagger UI's example picker (the first is the body
 * "Try it out" starts from) and in the document's requestBody `examples`. Routes give them as
 * `schema.bodyExamples`, which only the OpenAPI document reads (src/http/openapi/openapi.ts).
 */
export interface NamedExample {
  summary: string;
  description?: string;
  value: unknown;
}

export const Base64 = (description: string, example?: string) =>
  Type.String({ pattern: BASE64_PATTERN, description, contentEncoding: 'base64', ...(example ? { examples: [example] } : {}) });

export const KeyId = Type.String({
  minLength: 1,
  maxLength: ENVELOPE_LIMITS.maxKeyArnBytes,
  pattern: '^[A-Za-z0-9:/_+=,.@-]+$',
  description: 'A KMS key alias (`alias/...`), key id or ARN.',
  examples: ['alias/default'],
});

/**
 * A string-to-string map whose value rules apply to every key: `additionalProperties`.
 *
 * Not TypeBox's Record, which emits `patternProperties: {"^.*$": value}` and drops the key
 * schema. Both bit us (found by schemathesis): `.` does not match line terminators, so a key
 * holding "\n" escaped the value rules in Ajv (any type, any length passed validation and
 * only later checks caught it; a batch item answered 200 with an item error), and
 * fast-json-stringify left such entries out of responses (a decrypt answered an incomplete
 * context); and the empty key (which KMS refuses) was schema-valid.
 */
function StringMap(value: object, options: Record<string, unknown> = {}) {
  return Type.Unsafe<Record<string, string>>({ type: 'object', additionalProperties: value, ...options });
}

/**
 * A string of at most `bytes` UTF-8 bytes, in terms a JSON Schema can state: Ajv and every
 * other validator count code points, and a code point is 1 to 4 UTF-8 bytes. One tier per
 * width, so the common case keeps the whole bound: `bytes` characters when all are ASCII, half
 * as many when all are below U+0800, a third when all are in the BMP (surrogates excluded, so a
 * validator that matches UTF-16 units counts the same), a quarter otherwise. Every string the
 * schema accepts is within `bytes`; one of a single width is accepted up to the last character
 * that fits (decision 19 in docs/ARCHITECTURE.md).
 */
export function utf8Bounded(bytes: number, minLength = 0) {
  const tier = (pattern: string | undefined, width: number) => ({
    type: 'string',
    ...(minLength > 0 ? { minLength } : {}),
    maxLength: Math.floor(bytes / width),
    ...(pattern ? { pattern } : {}),
  });
  return {
    anyOf: [
      tier('^[\\u0000-\\u007F]*$', 1),
      tier('^[\\u0000-\\u07FF]*$', 2),
      tier('^[\\u0000-\\uD7FF\\uE000-\\uFFFF]*$', 3),
      tier(undefined, 4),
    ],
  };
}

const KEY_RULE =
  `Keys are 1 to ${ENVELOPE_LIMITS.maxContextKeyBytes} UTF-8 bytes, values at most ${ENVELOPE_LIMITS.maxContextValueBytes}: ` +
  'as many characters when all are ASCII, half as many when all are below U+0800, a third when all are in the BMP, a quarter otherwise.';
/**
 * The one rule no JSON schema can state (a sum), in words in every context's description;
 * test/http/contract-bounds.test.ts reads the number back from openapi.yaml.
 */
const CONTEXT_TOTAL_RULE = `At most ${ENVELOPE_LIMITS.maxContextPairs} pairs and at most ${ENVELOPE_LIMITS.maxContextTotalBytes} UTF-8 bytes in total (keys and values; 400 \`InvalidContext\` above).`;

/**
 * Context keys within their byte bound, and never `__proto__`: Fastify's JSON parser refuses
 * that key anywhere in a body (prototype-poisoning guard), so the schema says so rather than
 * promise a key the service rejects (found by schemathesis). Dropping the key instead would
 * silently bind a different context.
 */
const CONTEXT_KEY_NAMES = {
  propertyNames: { ...utf8Bounded(ENVELOPE_LIMITS.maxContextKeyBytes, 1), not: { const: '__proto__' } },
};
const ContextValue = () => Type.Unsafe<string>(utf8Bounded(ENVELOPE_LIMITS.maxContextValueBytes));

/** A request's encryption context: `description` first, then the bounds every context has. */
function ContextMap(description: string, examples?: unknown[]) {
  return StringMap(ContextValue(), {
    ...CONTEXT_KEY_NAMES,
    maxProperties: ENVELOPE_LIMITS.maxContextPairs,
    description: `${description} ${KEY_RULE} ${CONTEXT_TOTAL_RULE}`,
    ...(examples ? { examples } : {}),
  });
}

export const EncryptionContextSchema = ContextMap(
  'The KMS encryption context: sent to KMS, visible in CloudTrail, and a cache partition. Keep it coarse ' +
    '(tenant, purpose); put per-record data in `aad`.',
  [EXAMPLE_CONTEXT],
);

// No minLength: the pattern already needs one character, and Ajv's minLength counts code
// points over the whole string, a cost per request that grows with the ciphertext.
export const Ciphertext = Type.String({
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

export const EncryptResponse = Type.Object(
  {
    ciphertext: Ciphertext,
    keyId: Type.String({ description: 'ARN of the KMS key that wraps the data key.' }),
  },
  {
    description: 'The ciphertext, and the ARN of the KMS key that wraps its data key.',
    examples: [{ ciphertext: EXAMPLE_CIPHERTEXT, keyId: EXAMPLE_KEY_ARN }],
  },
);

export const DecryptBody = Type.Object(
  {
    ciphertext: Ciphertext,
    context: Type.Optional(ContextMap('If given, must equal the context stored in the ciphertext (422 otherwise).')),
    aad: Type.Optional(Aad),
  },
  { additionalProperties: false },
);
export type DecryptBody = Static<typeof DecryptBody>;

export const DecryptResponse = Type.Object(
  {
    plaintext: Type.String({ description: 'The decrypted bytes, base64.', contentEncoding: 'base64' }),
    keyId: Type.String({ description: 'ARN of the KMS key that wrapped the data key.' }),
    context: StringMap(Type.String(), { description: 'The encryption context stored in the ciphertext.' }),
  },
  {
    description: 'The plaintext, with the key and the encryption context stored in the ciphertext.',
    examples: [{ plaintext: EXAMPLE_HELLO, keyId: EXAMPLE_KEY_ARN, context: EXAMPLE_CONTEXT }],
  },
);

export const RewrapBody = Type.Object(
  {
    ciphertext: Ciphertext,
    keyId: Type.Optional(KeyId),
    context: Type.Optional(ContextMap('If given, must equal the context stored in the ciphertext. Rewrap never changes the context.')),
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

export const DataKeyResponse = Type.Object(
  {
    keyId: Type.String({ description: 'ARN of the KMS key that wrapped the data key.' }),
    wrappedKey: Type.String({ description: 'The KMS CiphertextBlob of the data key, base64.', contentEncoding: 'base64' }),
    plaintextKey: Type.Optional(
      Type.String({ description: 'The 32-byte data key, base64. Only when `includePlaintext` was asked for and granted.', contentEncoding: 'base64' }),
    ),
  },
  {
    description: 'A fresh data key: always wrapped, in plaintext too only when asked for and granted.',
    examples: [
      {
        keyId: EXAMPLE_KEY_ARN,
        wrappedKey: EXAMPLE_WRAPPED_KEY,
      },
    ],
  },
);

export const UnwrapBody = Type.Object(
  {
    keyId: Type.String({
      minLength: 1,
      maxLength: ENVELOPE_LIMITS.maxKeyArnBytes,
      pattern: '^[A-Za-z0-9:/_+=,.@-]+$',
      description: 'The KMS key named in the stored header: the ARN `/v1/datakey` answered as `keyId`.',
      examples: [EXAMPLE_KEY_ARN],
    }),
    wrappedKey: Type.String({
      pattern: BASE64_PATTERN,
      minLength: 4,
      maxLength: Math.ceil(ENVELOPE_LIMITS.maxWrappedKeyBytes / 3) * 4,
      contentEncoding: 'base64',
      description: 'The wrapped data key (KMS CiphertextBlob) stored in the header, base64.',
    }),
    context: Type.Optional(ContextMap('The encryption context stored in the header, which KMS and the policy judge (none: empty).')),
  },
  { additionalProperties: false },
);
export type UnwrapBody = Static<typeof UnwrapBody>;

export const UnwrapResponse = Type.Object(
  {
    keyId: Type.String({ description: 'ARN of the KMS key that unwrapped the data key.' }),
    plaintextKey: Type.String({ description: 'The 32-byte data key, base64. Zero it as soon as the payload is opened.', contentEncoding: 'base64' }),
  },
  {
    description: 'The data key in plaintext: the caller opens its payload locally, checking the key commitment stored beside it.',
    examples: [{ keyId: EXAMPLE_KEY_ARN, plaintextKey: 'q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=' }],
  },
);

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

const EXAMPLE_ITEM_ERROR = { error: { code: 'KeyNotFound', status: 404, detail: 'no such key' } };

export const EncryptBatchResponse = Type.Object(
  {
    results: Type.Array(Type.Union([EncryptResponse, ItemError]), { description: 'One result per item, in input order.' }),
  },
  {
    description: 'One result per item, in input order; an item that failed carries `error` instead.',
    examples: [{ results: [{ ciphertext: EXAMPLE_CIPHERTEXT, keyId: EXAMPLE_KEY_ARN }, EXAMPLE_ITEM_ERROR] }],
  },
);
export const DecryptBatchResponse = Type.Object(
  {
    results: Type.Array(Type.Union([DecryptResponse, ItemError]), { description: 'One result per item, in input order.' }),
  },
  {
    description: 'One result per item, in input order; an item that failed carries `error` instead.',
    examples: [
      {
        results: [
          { plaintext: EXAMPLE_HELLO, keyId: EXAMPLE_KEY_ARN, context: {} },
          { error: { code: 'AuthenticationFailed', status: 422, detail: 'ciphertext failed authentication (tampered, or wrong aad)' } },
        ],
      },
    ],
  },
);

/** One policy rule as it applies to this caller: what GET /v1/keys shows for each key. */
const KeyGrant = Type.Object(
  {
    rule: Type.String({ description: 'The policy rule (the `ruleId` of the audit events of the requests it allows).' }),
    operations: Type.Array(Type.String(), { description: 'What this rule lets the caller do with the key.' }),
    context: Type.Object(
      {
        required: Type.Array(Type.String(), { description: 'Context keys that must be present (those of `equals` included).' }),
        equals: StringMap(Type.String(), {
          description: 'Context keys with the one value allowed; claim bindings are resolved to this caller\'s own claim values.',
        }),
        optional: Type.Array(Type.String(), { description: 'Context keys that may be present with any value.' }),
        allowOthers: Type.Boolean({ description: 'Whether context keys not named above are allowed.' }),
      },
      { description: 'The encryption context a request must carry under this rule (for decrypt and rewrap, the stored one).' },
    ),
    maxPlaintextBytes: Type.Optional(Type.Integer({ description: 'Largest plaintext this rule allows (encrypt, decrypt).' })),
    rewrapTo: Type.Optional(
      Type.Array(Type.String(), {
        description:
          'Where a rewrap may send a ciphertext of this key: key patterns, `{context.NAME}` standing for that value of the ' +
          "ciphertext's stored context. Absent: any key this principal may encrypt to with that context.",
      }),
    ),
  },
  { description: 'A rule of the policy that grants this caller something on the key, with the constraints each request must meet.' },
);

export const KeysResponse = Type.Object(
  {
    keys: Type.Array(
      Type.Object({
        keyId: Type.String({ description: 'Key ARN.' }),
        aliases: Type.Array(Type.String()),
        operations: Type.Array(Type.String(), { description: 'What this caller may do with the key (all its grants together).' }),
        grants: Type.Array(KeyGrant, { description: 'The rules behind `operations`, in policy order, each with its context constraints.' }),
      }),
    ),
  },
  {
    description:
      'The keys this caller may use (listed by alias), each with the operations the policy allows and the rules that allow ' +
      'them, with the context each rule requires: what a caller needs to build a request the policy accepts.',
    examples: [
      {
        keys: [
          {
            keyId: EXAMPLE_KEY_ARN,
            aliases: ['alias/tenant-a'],
            operations: ['encrypt', 'decrypt', 'datakey'],
            grants: [
              {
                rule: 'tenant-a-billing',
                operations: ['encrypt', 'decrypt', 'datakey'],
                context: { required: ['purpose', 'tenant'], equals: { purpose: 'billing', tenant: 'tenant-a' }, optional: [], allowOthers: false },
                maxPlaintextBytes: 65536,
              },
            ],
          },
        ],
      },
    ],
  },
);

export const Problem = Type.Object(
  {
    type: Type.String({ description: 'A URI naming the problem type (ends with `code`).' }),
    title: Type.String({ description: 'The HTTP reason phrase of `status`.' }),
    status: Type.Integer({ description: 'The HTTP status code, repeated.' }),
    detail: Type.String({ description: 'What went wrong, for a person. Written by the service, never quoting input.' }),
    code: Type.String({ description: 'Stable machine-readable error code.' }),
    requestId: Type.String({ description: 'Also the audit event\'s requestID.' }),
    errors: Type.Optional(
      Type.Array(
        Type.Object(
          {
            line: Type.Optional(Type.Integer({ minimum: 1 })),
            column: Type.Optional(Type.Integer({ minimum: 1 })),
            field: Type.String({ description: 'Dotted path, e.g. `rules[2].operations[0]`; empty for the whole file.' }),
            message: Type.String(),
          },
          { additionalProperties: false },
        ),
        { description: '`PolicyInvalid` only: every error in the policy file, top to bottom, with line and column.' },
      ),
    ),
  },
  {
    $id: 'Problem',
    description: 'RFC 9457 problem details. Never contains plaintext or key material.',
    examples: [
      {
        type: 'https://envelope-service.internal/problems/KeyNotFound',
        title: 'Not Found',
        status: 404,
        detail: 'no such key',
        code: 'KeyNotFound',
        requestId: '0b9f6a52-3d1e-4c7a-9a43-5a2f1e0c7d21',
      },
    ],
  },
);
export type Problem = Static<typeof Problem>;

export const Health = Type.Object(
  { status: Type.String({ description: 'Always `ok` when the process answers.' }) },
  { description: 'The process is up.', examples: [{ status: 'ok' }] },
);
export const Readiness = Type.Object(
  {
    status: Type.String({ description: '`ready` or `not ready`.' }),
    checks: Type.Object(
      {
        kms: Type.String({ description: '`ok` or `unavailable`: DescribeKey on DEFAULT_KEY_ID (cached for READINESS_CACHE_MS).' }),
        audit: Type.String({ description: '`ok` or `unavailable`: the audit sink is writable.' }),
        memory: Type.Optional(
          Type.String({
            description:
              '`ok`, or `shedding`: memory went above its high-water mark (MAX_MEMORY_USED_BYTES, MAX_HEAP_USED_BYTES) and has not yet fallen below its low-water mark; /v1 requests get 503 Overloaded meanwhile.',
          }),
        ),
        auditCheckpoint: Type.Optional(
          Type.String({
            description:
              '`ok`, `delayed` (events have waited for a signed checkpoint for more than twice AUDIT_CHECKPOINT_INTERVAL_MS: KMS Sign is failing) or `disabled`. Informational: it never makes the instance not ready.',
          }),
        ),
        auditCheckpointAgeSeconds: Type.Optional(
          Type.Number({ description: 'Seconds since the last signed audit checkpoint was written (absent when disabled or none yet).' }),
        ),
      },
      { description: 'One entry per dependency.' },
    ),
  },
  { description: 'Whether the instance can serve /v1 requests, with each check.' },
);

// ---- Named request examples (per operation) ---------------------------------------------------

export const ENCRYPT_EXAMPLES: Record<string, NamedExample> = {
  minimal: {
    summary: 'Default key, no context',
    description: 'Encrypts "hello world" under DEFAULT_KEY_ID.',
    value: { plaintext: EXAMPLE_HELLO },
  },
  bound: {
    summary: 'Named key, coarse context, per-record aad',
    description:
      '`context` (tenant, purpose) goes to KMS and CloudTrail and partitions the data-key cache; `aad` ("order-42") ' +
      'binds this ciphertext to one record without costing a KMS call. Decrypting needs the same `aad`.',
    value: { plaintext: EXAMPLE_HELLO, keyId: 'alias/default', context: EXAMPLE_CONTEXT, aad: EXAMPLE_AAD },
  },
};

/** Where the decrypt and rewrap examples' ciphertexts come from, said on each. */
/** "hello world" through /v1/encrypt/stream under alias/default, no context, in its ev2: text form. */
export const EXAMPLE_STREAM_CIPHERTEXT =
  'ev2:AgIAR2Fybjphd3M6a21zOmxvY2FsOjAwMDAwMDAwMDAwMDprZXkvNjM2Mzg2ZGUtMDliYy00YjFjLThiYTEtNTJiMzc3N2UxNWVkAGECY2OG3gm8SxyLoVKzd34V7TGpce6z4dbV__mevFqAtrnYElc-FjmZoi35WzAyJSndzm0JYttC1WUznqw4F63lsh5t2jgo8sGNDUemDvO1ddDwUW-WuLEK8yIKHY7qMxFxAAB537lz_GjEe63Tdh6H5-HIo8W3C_IeIg7QqN5OMWIPy0Z7lIRVj4BFZveipioBN4If65jkylwxhwMHIE3EJQMEAAEAAB-24vYiu6G2tkbJeHRz6rjTzdxl8yPWLriYHQ';

export const PASTE_STREAM_HINT =
  'On an instance with the embedded (local) provider the served document carries a stream that instance made, so this runs as is; elsewhere send what /v1/encrypt/stream answered.';

export const PASTE_HINT =
  'On an instance with the embedded (local) provider the served document carries a ciphertext that instance made, so this runs as is; elsewhere paste the `ciphertext` of a /v1/encrypt answer.';

export const DECRYPT_EXAMPLES: Record<string, NamedExample> = {
  minimal: {
    summary: 'A ciphertext without context or aad',
    description: 'The `minimal` result of /v1/encrypt. ' + PASTE_HINT,
    value: { ciphertext: EXAMPLE_CIPHERTEXT },
  },
  bound: {
    summary: 'Checking the context, and giving the aad used to encrypt',
    description: 'The `bound` result of /v1/encrypt. A different `context` or `aad` answers 422. ' + PASTE_HINT,
    value: { ciphertext: EXAMPLE_CIPHERTEXT_BOUND, context: EXAMPLE_CONTEXT, aad: EXAMPLE_AAD },
  },
};

export const ENCRYPT_BATCH_EXAMPLES: Record<string, NamedExample> = {
  twoItems: {
    summary: 'Two payloads, two contexts',
    description: 'Each item is a /v1/encrypt body. Items sharing key and context share one data key.',
    value: {
      items: [
        { plaintext: 'aGVsbG8=', context: EXAMPLE_CONTEXT },
        { plaintext: 'd29ybGQ=', context: { tenant: 'globex', purpose: 'billing' }, aad: EXAMPLE_AAD },
      ],
    },
  },
};

export const DECRYPT_BATCH_EXAMPLES: Record<string, NamedExample> = {
  twoItems: {
    summary: 'Two ciphertexts',
    description: 'Each item is a /v1/decrypt body; one failing item does not fail the others. ' + PASTE_HINT,
    value: {
      items: [{ ciphertext: EXAMPLE_CIPHERTEXT }, { ciphertext: EXAMPLE_CIPHERTEXT_BOUND, context: EXAMPLE_CONTEXT, aad: EXAMPLE_AAD }],
    },
  },
};

export const REWRAP_EXAMPLES: Record<string, NamedExample> = {
  toAnotherKey: {
    summary: 'Move a ciphertext to a named key',
    description:
      '`keyId` is the destination: any key you may rewrap to (GET /v1/keys). Here `alias/default`, the one key of a fresh ' +
      'dev instance, so the example runs there (a rewrap to the same key still replaces the wrapped data key). Needs ' +
      '`rewrap` on both keys, and a destination the rule granting the source accepts (its `rewrapTo`, or by default a key ' +
      'the caller may encrypt to). The payload bytes are unchanged; only the wrapped data key is replaced. ' + PASTE_HINT,
    value: { ciphertext: EXAMPLE_CIPHERTEXT, keyId: 'alias/default' },
  },
  checkingContext: {
    summary: 'Re-wrap under the default key, checking the stored context',
    description: PASTE_HINT,
    value: { ciphertext: EXAMPLE_CIPHERTEXT_BOUND, context: EXAMPLE_CONTEXT },
  },
};

export const UNWRAP_EXAMPLES: Record<string, NamedExample> = {
  storedKey: {
    summary: 'Unwrap the data key stored in a stream header (needs `datakey:unwrap`)',
    description:
      'The key, wrapped key and context as a stream header stores them. On an instance with the embedded (local) provider the served ' +
      'document carries a wrapped key that instance made, so this runs as is; elsewhere paste `keyId` and `wrappedKey` of a /v1/datakey answer.',
    value: { keyId: EXAMPLE_KEY_ARN, wrappedKey: EXAMPLE_WRAPPED_KEY },
  },
};

export const DATAKEY_EXAMPLES: Record<string, NamedExample> = {
  wrappedOnly: {
    summary: 'Wrapped key only (store it next to your data)',
    value: { context: { tenant: 'acme', purpose: 'exports' } },
  },
  withPlaintext: {
    summary: 'Wrapped and plaintext key (needs `datakey:plaintext`)',
    description: 'Encrypt locally with `plaintextKey`, zero it, keep `wrappedKey`; KMS Decrypt with the same context recovers it.',
    value: { keyId: 'alias/default', context: { tenant: 'acme', purpose: 'exports' }, includePlaintext: true },
  },
};
