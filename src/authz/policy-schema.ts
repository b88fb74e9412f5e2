/**
 * The policy file's shape, as one TypeBox schema: the single source of truth for what the
 * loader accepts and for docs/POLICY.md. `additionalProperties: false` everywhere, because a
 * misspelt optional constraint (`maxPlaintextByte:`) must fail loudly instead of silently
 * loosening a rule.
 *
 * Checks that span fields (uniqueness, "exactly one of jwksFile/jwksUrl", claim pointer
 * syntax) live in policy-load.ts, next to the code that reports them with a line number.
 */
import { Type, type Static } from 'typebox';
import { OPERATIONS } from './principal.js';

/**
 * JWS algorithms a policy may allow. Asymmetric only: with an HMAC algorithm the verifying key
 * would be the signing key, and a JWKS (public by design) would let anyone mint tokens — the
 * classic "HS256 signed with the RSA public key" confusion. `none` is no signature at all.
 */
export const ASYMMETRIC_JWS_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;
export type AsymmetricJwsAlgorithm = (typeof ASYMMETRIC_JWS_ALGORITHMS)[number];

/** Default for `jwt.maxTokenAgeSeconds`: a day, longer than any issuer's normal token lifetime. */
export const DEFAULT_MAX_TOKEN_AGE_SECONDS = 24 * 3600;
/** A longer-lived bearer token is an API key without rotation: use an API key. */
const MAX_TOKEN_AGE_LIMIT_SECONDS = 7 * 24 * 3600;

/** Authentication methods a rule can name (`dev-token` exists only without a policy file). */
export const RULE_AUTH_METHODS = ['api-key', 'jwt'] as const;

const NonEmpty = Type.String({ minLength: 1, maxLength: 2048 });
/** A tenant's name: its principals share one data-key cache share and one KMS budget. */
const TenantName = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$' });
const Patterns = Type.Array(NonEmpty, { minItems: 1 });
const Obj = <T extends Parameters<typeof Type.Object>[0]>(properties: T) => Type.Object(properties, { additionalProperties: false });

const ApiKeySchema = Obj({
  /** Becomes Principal.id. Several entries may share a name (token rotation). */
  name: Type.String({ minLength: 1, maxLength: 256 }),
  /** Hex SHA-256 of the token; the token itself never appears in the file. */
  sha256: Type.String({ pattern: '^[0-9a-fA-F]{64}$' }),
  /** Static claims for `fromClaims` bindings. */
  claims: Type.Optional(Type.Record(Type.String(), Type.Union([Type.String(), Type.Number()]))),
  /** The key's tenant (see docs/POLICY.md, "Tenants"). */
  tenant: Type.Optional(TenantName),
  description: Type.Optional(Type.String()),
});

const JwtSchema = Obj({
  issuer: NonEmpty,
  audience: Type.Union([NonEmpty, Type.Array(NonEmpty, { minItems: 1 })]),
  /** Exactly one of jwksFile (relative to the policy file) and jwksUrl. */
  jwksFile: Type.Optional(NonEmpty),
  jwksUrl: Type.Optional(NonEmpty),
  algorithms: Type.Array(Type.Enum([...ASYMMETRIC_JWS_ALGORITHMS]), { minItems: 1 }),
  /** The claim that becomes Principal.id. */
  principalClaim: Type.Optional(NonEmpty),
  /** The claim (name or /json/pointer) whose value is the token's tenant. */
  tenantClaim: Type.Optional(NonEmpty),
  clockToleranceSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 300 })),
  /** Longest accepted lifetime (exp - iat) and age (now - iat); iat becomes required. */
  maxTokenAgeSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: MAX_TOKEN_AGE_LIMIT_SECONDS })),
});

const ContextSchema = Obj({
  /** Keys that must be present, any value. */
  required: Type.Optional(Type.Array(NonEmpty)),
  /** Keys that may be present, any value (matters only when allowOthers is false). */
  optional: Type.Optional(Type.Array(NonEmpty)),
  /** Keys that must be present with exactly this value. */
  equals: Type.Optional(Type.Record(Type.String(), Type.String())),
  /** Context key -> claim name (or /json/pointer); must be present and equal the claim. */
  fromClaims: Type.Optional(Type.Record(Type.String(), NonEmpty)),
  /** May the context hold keys the rule does not name? Default false. */
  allowOthers: Type.Optional(Type.Boolean()),
});

const RuleSchema = Obj({
  id: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$' }),
  description: Type.Optional(Type.String()),
  /** The tenant of the principals this rule names that have none of their own (first such rule wins). */
  tenant: Type.Optional(TenantName),
  /** Which authentication methods the principals must have used; see policy-load.ts for the default. */
  authMethods: Type.Optional(Type.Array(Type.Enum([...RULE_AUTH_METHODS]), { minItems: 1 })),
  principals: Patterns,
  operations: Type.Array(Type.Enum([...OPERATIONS]), { minItems: 1 }),
  keys: Patterns,
  /** Where a rewrap this rule grants may move data: key patterns with {context.NAME} placeholders. */
  rewrapTo: Type.Optional(Patterns),
  context: Type.Optional(ContextSchema),
  maxPlaintextBytes: Type.Optional(Type.Integer({ minimum: 0 })),
});

export const PolicyFileSchema = Obj({
  version: Type.Literal(1),
  authentication: Obj({
    apiKeys: Type.Optional(Type.Array(ApiKeySchema)),
    jwt: Type.Optional(JwtSchema),
  }),
  rules: Type.Array(RuleSchema),
});

export type PolicyFile = Static<typeof PolicyFileSchema>;
export type JwtSettings = Static<typeof JwtSchema>;
export type ApiKeySettings = Static<typeof ApiKeySchema>;
