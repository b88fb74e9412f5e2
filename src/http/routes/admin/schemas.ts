/** TypeBox schemas of the admin API (/v1/admin/...): request bodies and responses. */
import { Type, type Static } from 'typebox';
import { EncryptionContextSchema, KeyId } from '../../schemas/schemas.js';

const Count = (description: string) => Type.Integer({ minimum: 0, description });
const Ms = (description: string) => Type.Number({ minimum: 0, description });

const CacheKey = Type.Object(
  {
    keyArn: Type.String({ description: 'The KMS key the cached data keys are under.' }),
    entries: Count('Cached data keys under this KMS key.'),
    contexts: Count('Distinct encryption contexts among them (a count only: context values are never shown).'),
    oldestAgeMs: Ms('Age of the oldest of them.'),
    messages: Count('Messages they have protected (encrypt) or opened (decrypt), summed.'),
    bytes: Count('Plaintext bytes they have protected, summed.'),
    hits: Count('Requests they served without a KMS call.'),
    busiestEntry: Type.Object(
      { messages: Count('Most messages on one data key (against limits.maxMessages).'), bytes: Count('Most bytes on one data key (against limits.maxBytes).') },
      { description: 'The entry closest to its usage caps.' },
    ),
  },
  { additionalProperties: false },
);

const CacheShare = Type.Object(
  {
    principal: Type.String({ description: 'The principal whose request fetched the entries (`method:id`).' }),
    entries: Count('Entries it owns.'),
    fairShare: Count('Capacity divided by the principals holding entries: an owner at or below it is never evicted by another principal.'),
  },
  { additionalProperties: false },
);

const CacheSummary = Type.Object(
  {
    kind: Type.String({ description: '`encrypt` or `decrypt`.' }),
    limits: Type.Object(
      {
        capacity: Count('CACHE_CAPACITY'),
        maxAgeMs: Ms('CACHE_MAX_AGE_MS'),
        maxMessages: Type.Optional(Count('CACHE_MAX_MESSAGES (encrypt)')),
        maxBytes: Type.Optional(Count('CACHE_MAX_BYTES (encrypt)')),
      },
      { additionalProperties: false },
    ),
    entries: Count('Cached data keys.'),
    hits: Count('Requests served without a KMS call of their own since start.'),
    misses: Count('Requests that called KMS since start.'),
    hitRate: Type.Number({ minimum: 0, maximum: 1, description: 'hits / (hits + misses); 0 before any request.' }),
    keys: Type.Array(CacheKey, { description: 'Per KMS key.' }),
    principals: Type.Array(CacheShare, { description: 'Per principal share, largest first.' }),
  },
  { additionalProperties: false },
);

export const CacheStateResponse = Type.Object(
  { caches: Type.Array(CacheSummary, { description: 'The encrypt and the decrypt cache of this replica.' }) },
  { additionalProperties: false, description: 'The data-key caches of the replica that answered. No key material, no context values.' },
);


const InstanceId = Type.String({ description: 'A replica: its INSTANCE_ID (the pod name), or its host name.' });

/** With REDIS_URL: who else did what the answering replica did. */
const FleetReport = Type.Object(
  {
    expected: Type.Array(InstanceId, { description: 'Replicas announced (Redis heartbeat) when the action was sent, the answering one included.' }),
    confirmed: Type.Array(
      Type.Object(
        {
          instanceId: InstanceId,
          ok: Type.Boolean({ description: 'It acted (evict: dropped its matching keys; reload: its file was valid and is in force).' }),
          dropped: Type.Optional(Count('Evict: data keys it dropped and zeroed.')),
          digest: Type.Optional(Type.String({ description: 'Reload: the digest of the policy in force there afterwards.' })),
          errorCode: Type.Optional(Type.String({ description: 'Why it did not act (e.g. PolicyInvalid: its own file is invalid; its policy is unchanged).' })),
        },
        { additionalProperties: false },
      ),
      { description: 'Answers received within `timeoutMs`, the answering replica first.' },
    ),
    missing: Type.Array(InstanceId, { description: 'Expected replicas that did not answer within `timeoutMs`: act on them by hand, or retry.' }),
    timeoutMs: Ms('FLEET_CONFIRM_TIMEOUT_MS'),
    degraded: Type.Optional(Type.String({ description: 'Present when the action could not be sent (Redis unreachable): only the answering replica acted.' })),
  },
  {
    additionalProperties: false,
    description: 'Present only with REDIS_URL: the action was sent to every replica, and this is who confirmed within the timeout.',
  },
);

/**
 * What to drop, as the schema states it (so a generated client, the UI and a fuzzer all know
 * that an empty body is not "everything"): `all: true` alone, or a `keyId` (and optionally a
 * `context`), or a `context` alone.
 */
export const EvictBody = Type.Union(
  [
    Type.Object({ keyId: KeyId, context: Type.Optional(EncryptionContextSchema) }, { additionalProperties: false, title: 'By key (and context)' }),
    Type.Object({ context: EncryptionContextSchema }, { additionalProperties: false, title: 'By context' }),
    Type.Object(
      { all: Type.Literal(true, { description: 'Drop every cached data key.' }) },
      { additionalProperties: false, title: 'Everything' },
    ),
  ],
  {
    description: 'What to drop: the data keys of a KMS key (`keyId`), of an encryption context (`context`), of both, or `all: true`.',
    examples: [{ keyId: 'alias/default' }],
  },
);
export type EvictBody = Static<typeof EvictBody>;

export const EvictResponse = Type.Object(
  {
    dropped: Count('Data keys dropped and zeroed, both caches together.'),
    encrypt: Count('From the encrypt cache.'),
    decrypt: Count('From the decrypt cache.'),
    fleet: Type.Optional(FleetReport),
  },
  { additionalProperties: false, description: 'Dropped on the replica that answered (and, with REDIS_URL, on those in `fleet.confirmed`); the next request for them calls KMS.', examples: [{ dropped: 3, encrypt: 2, decrypt: 1 }] },
);

const PolicyIssue = Type.Object(
  {
    line: Type.Optional(Type.Integer({ minimum: 1 })),
    column: Type.Optional(Type.Integer({ minimum: 1 })),
    field: Type.String({ description: 'Dotted path, e.g. `rules[2].operations[0]`; empty for the document.' }),
    message: Type.String(),
  },
  { additionalProperties: false },
);

export const PolicyStateResponse = Type.Object(
  {
    mode: Type.String({ description: '`file`, or `dev` (no POLICY_FILE).' }),
    source: Type.Optional(Type.String({ description: 'The policy file (POLICY_FILE).' })),
    digest: Type.String({ description: 'Hex SHA-256 of the file in force (`dev` in dev mode).' }),
    loadedAt: Type.String({ format: 'date-time' }),
    rules: Type.Optional(Count('Rules in the file.')),
    apiKeys: Type.Optional(Count('API keys in the file.')),
    jwt: Type.Optional(Type.String({ description: '`file`, `url` or `none`: where JWT keys come from.' })),
    lastReload: Type.Optional(
      Type.Object(
        {
          at: Type.String({ format: 'date-time' }),
          ok: Type.Boolean(),
          changed: Type.Optional(Type.Boolean()),
          digest: Type.Optional(Type.String()),
          errors: Type.Optional(Type.Array(PolicyIssue)),
        },
        { additionalProperties: false, description: 'The last reload attempt (SIGHUP or POST /v1/admin/policy/reload).' },
      ),
    ),
  },
  { additionalProperties: false, description: 'The policy the replica that answered enforces.' },
);

export const ReloadResponse = Type.Object(
  {
    changed: Type.Boolean({ description: 'The file differs from the one in force before.' }),
    digest: Type.String(),
    loadedAt: Type.String({ format: 'date-time' }),
    fleet: Type.Optional(FleetReport),
  },
  { additionalProperties: false, description: 'The file was valid and is now in force on the replica that answered (and, with REDIS_URL, on those in `fleet.confirmed` with `ok`).' },
);

export const FleetStateResponse = Type.Object(
  {
    instanceId: InstanceId,
    redis: Type.String({ description: '`off` (no REDIS_URL: the fleet is this replica), `connected`, or `unreachable` (the replicas last seen are shown).' }),
    replicas: Type.Array(
      Type.Object(
        {
          instanceId: InstanceId,
          startedAt: Type.String({ format: 'date-time' }),
          version: Type.String({ description: 'The service version it runs.' }),
          seenAt: Type.String({ format: 'date-time', description: 'Its last heartbeat.' }),
        },
        { additionalProperties: false },
      ),
      { description: 'Replicas whose heartbeat has not expired, by instanceId.' },
    ),
  },
  { additionalProperties: false, description: 'The replicas the answering replica sees.' },
);

const OperationStats = Type.Object(
  {
    operation: Type.String(),
    calls: Count('Calls within the window (the last 256 at most).'),
    errors: Count('Of which failed.'),
    errorRate: Type.Number({ minimum: 0, maximum: 1 }),
    errorCodes: Type.Unsafe<Record<string, number>>({ type: 'object', additionalProperties: { type: 'integer' }, description: 'Failures by KMS error code.' }),
    latencyMs: Type.Object({ p50: Ms('Median.'), p95: Ms('95th percentile.'), max: Ms('Slowest.') }, { additionalProperties: false }),
  },
  { additionalProperties: false },
);

export const KmsStateResponse = Type.Object(
  {
    provider: Type.String({ description: '`local` or `aws`.' }),
    region: Type.Optional(Type.String({ description: 'AWS_REGION (aws provider).' })),
    breaker: Type.Object(
      {
        state: Type.String({ description: '`closed`, `open` or `half-open`.' }),
        consecutiveFailures: Count('Unavailable answers in a row.'),
        failureThreshold: Count('KMS_BREAKER_FAILURES'),
        cooldownMs: Ms('KMS_BREAKER_COOLDOWN_MS'),
      },
      { additionalProperties: false },
    ),
    windowMs: Ms('How far back `operations` looks.'),
    operations: Type.Array(OperationStats, { description: 'Per KMS operation called within the window.' }),
    regions: Type.Array(
      Type.Object(
        {
          region: Type.String({ description: 'The region (`local` for the embedded provider).' }),
          home: Type.Boolean({ description: 'AWS_REGION: the region of `breaker` and `operations` above.' }),
          breaker: Type.Object(
            { state: Type.String({ description: '`closed`, `open` or `half-open`.' }), consecutiveFailures: Count('Unavailable answers in a row.') },
            { additionalProperties: false },
          ),
          operations: Type.Array(OperationStats, { description: 'Per KMS operation called within the window, in this region.' }),
        },
        { additionalProperties: false },
      ),
      { description: 'Every region with a KMS client (the home region, and each region a key set has a key in once it was called), each with its own breaker and calls.' },
    ),
    budgets: Type.Array(
      Type.Object(
        { principal: Type.String(), tokensLeft: Count('KMS calls it may still start now.'), burst: Count('KMS_BUDGET_BURST'), perSecond: Type.Number({ description: 'KMS_BUDGET_PER_SECOND' }) },
        { additionalProperties: false },
      ),
      { description: 'Per principal with a bucket in use (a principal not listed has its full burst), emptiest first.' },
    ),
  },
  { additionalProperties: false, description: 'KMS as the replica that answered sees it.' },
);
