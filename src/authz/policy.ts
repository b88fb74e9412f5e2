/**
 * Authorization: may this principal perform this operation on this key with this context?
 *
 * Deny by default. Rules only ever grant; a request is allowed when at least one rule matches
 * it in full, and the first such rule (in file order) is the one named in the decision and the
 * audit event. Order therefore never changes *whether* a request is allowed, only which rule is
 * credited — so reordering a policy is always safe.
 *
 * The deny reason is for the audit log only: it names rules, context keys and claim names,
 * never values, and the HTTP layer must not send it to the caller (a 403 says "denied", not
 * which constraint to tweak).
 */
import { claimAsString, parseClaimRef, type ClaimRef } from './claims.js';
import { compileGlobs, type GlobMatcher } from './glob.js';
import { DATA_OPERATIONS, OPERATIONS, type AdminOperation, type AuthMethod, type Operation, type Principal } from './principal.js';
import { destinationMatches, parseDestinationPattern, type DestinationTemplate } from './rewrap-destination.js';

export interface DecisionRequest {
  readonly operation: Operation;
  /**
   * Every name the key is known by: the alias or id the caller asked for, the resolved key ARN,
   * and the key's aliases (bare and as alias ARNs). Only names the key provider has confirmed
   * to denote this key may be listed — a rule matches when any of its key patterns matches any
   * of these names.
   */
  readonly keyNames: readonly string[];
  /** The encryption context; for decrypt and rewrap, the one stored in the ciphertext. */
  readonly context: Readonly<Record<string, string>>;
  /** Plaintext size, for rules with maxPlaintextBytes; omit when not applicable. */
  readonly plaintextBytes?: number;
}

/** Where a rewrap may go: judged against the rules that grant `rewrap` on the source. */
export interface RewrapDestinationRequest {
  /** Every name of the key the ciphertext is under (as DecisionRequest.keyNames). */
  readonly sourceKeyNames: readonly string[];
  /** Every name of the destination key. */
  readonly destinationKeyNames: readonly string[];
  /** The context stored in the ciphertext. */
  readonly context: Readonly<Record<string, string>>;
  /** The payload's size, for the default "may encrypt to" check. */
  readonly plaintextBytes?: number;
}

export type Decision = { readonly allowed: true; readonly ruleId: string } | { readonly allowed: false; readonly reason: string };

/** A rule as written in the policy file (after schema validation). */
export interface RuleSpec {
  readonly id: string;
  /**
   * How the principal must have authenticated. The policy loader always sets it (see
   * policy-load.ts); left out in code, the rule applies to every method.
   */
  readonly authMethods?: readonly AuthMethod[];
  readonly principals: readonly string[];
  readonly operations: readonly Operation[];
  readonly keys: readonly string[];
  /** Patterns (with `{context.NAME}` placeholders) a rewrap granted by this rule may move data to. */
  readonly rewrapTo?: readonly string[];
  readonly context?: {
    readonly required?: readonly string[];
    readonly optional?: readonly string[];
    readonly equals?: Readonly<Record<string, string>>;
    readonly fromClaims?: Readonly<Record<string, string>>;
    readonly allowOthers?: boolean;
  };
  readonly maxPlaintextBytes?: number;
  /** The tenant of the principals this rule applies to that have none of their own. */
  readonly tenant?: string;
}

interface ClaimBinding {
  /** The reference as written, for messages. */
  readonly ref: string;
  readonly path: ClaimRef;
}

interface CompiledRule {
  readonly id: string;
  readonly spec: RuleSpec;
  readonly authMethods: ReadonlySet<AuthMethod> | undefined;
  readonly matchPrincipal: GlobMatcher;
  readonly matchKey: GlobMatcher;
  readonly operations: ReadonlySet<Operation>;
  readonly required: readonly string[];
  // Maps, not objects: the file's keys become Map keys, so `__proto__` is just a string.
  readonly equals: ReadonlyMap<string, string>;
  readonly fromClaims: ReadonlyMap<string, ClaimBinding>;
  /** Context keys the rule names anywhere; others are refused unless allowOthers. */
  readonly namedKeys: ReadonlySet<string>;
  readonly allowOthers: boolean;
  readonly maxPlaintextBytes: number | undefined;
  /** Undefined: the destination must be a key the principal may encrypt to (with the stored context). */
  readonly rewrapTo: readonly DestinationTemplate[] | undefined;
}

/** What GET /v1/keys shows: one entry per rule that can apply to the principal. */
export interface Grant {
  readonly ruleId: string;
  /** Key patterns (IAM-style globs); intersect with the provider's keys via operationsForKey. */
  readonly keys: readonly string[];
  readonly operations: readonly Operation[];
  readonly context: {
    readonly required: readonly string[];
    /** Fixed values, with claim bindings already resolved to this principal's claim values. */
    readonly equals: Readonly<Record<string, string>>;
    readonly optional: readonly string[];
    readonly allowOthers: boolean;
  };
  readonly maxPlaintextBytes?: number;
  /** Where a rewrap of a key this rule grants may send it, as written (`{context.NAME}` kept). */
  readonly rewrapTo?: readonly string[];
}

function compileRule(spec: RuleSpec): CompiledRule {
  const context = spec.context ?? {};
  const equals = new Map(Object.entries(context.equals ?? {}));
  const fromClaims = new Map(
    Object.entries(context.fromClaims ?? {}).map(([key, ref]) => [key, { ref, path: parseClaimRef(ref) }] as const),
  );
  const required = [...(context.required ?? [])];
  const namedKeys = new Set([...required, ...(context.optional ?? []), ...equals.keys(), ...fromClaims.keys()]);
  return {
    id: spec.id,
    spec,
    authMethods: spec.authMethods === undefined ? undefined : new Set(spec.authMethods),
    matchPrincipal: compileGlobs(spec.principals),
    matchKey: compileGlobs(spec.keys),
    operations: new Set(spec.operations),
    required,
    equals,
    fromClaims,
    namedKeys,
    // Safe default: a rule only admits the context keys it names. Unnamed keys would be
    // accepted silently, become KMS cache partitions and land in CloudTrail, so a caller could
    // fragment the data-key cache or smuggle data into logs under a rule that never meant it.
    allowOthers: context.allowOthers ?? false,
    maxPlaintextBytes: spec.maxPlaintextBytes,
    rewrapTo: spec.rewrapTo?.map(parseDestinationPattern),
  };
}

/**
 * An API key named `billing` and a JWT whose subject is `billing` are different callers: a rule
 * applies only to the authentication methods it names.
 */
function appliesTo(rule: CompiledRule, principal: Principal): boolean {
  if (rule.authMethods !== undefined && !rule.authMethods.has(principal.authMethod)) return false;
  return rule.matchPrincipal(principal.id);
}

export class Policy {
  readonly #rules: readonly CompiledRule[];
  /** The rules granting each operation, computed once per policy snapshot (mayEverAllow). */
  readonly #rulesByOperation: ReadonlyMap<Operation, readonly CompiledRule[]>;

  constructor(rules: readonly RuleSpec[]) {
    this.#rules = rules.map(compileRule);
    this.#rulesByOperation = new Map(OPERATIONS.map((operation) => [operation, this.#rules.filter((rule) => rule.operations.has(operation))]));
  }

  get ruleIds(): readonly string[] {
    return this.#rules.map((rule) => rule.id);
  }

  /**
   * The tenant the rules give a principal: that of the first rule (in file order) applying to
   * it (its method and id) that names one. Whatever the operation: a tenant is who shares, not
   * what is allowed.
   */
  tenantOf(principal: Principal): string | undefined {
    return this.#rules.find((rule) => rule.spec.tenant !== undefined && appliesTo(rule, principal))?.spec.tenant;
  }

  decide(principal: Principal, request: DecisionRequest): Decision {
    if (request.keyNames.length === 0) return { allowed: false, reason: 'no key name to authorize' };
    // The first rule that matches principal, operation and key but fails a constraint explains
    // a deny better than "nothing matched"; keep its reason for the audit log.
    let closest: string | undefined;
    for (const rule of this.#rules) {
      if (!appliesTo(rule, principal)) continue;
      if (!rule.operations.has(request.operation)) continue;
      if (!request.keyNames.some(rule.matchKey)) continue;
      const failure = contextFailure(rule, principal, request.context ?? {}) ?? sizeFailure(rule, request.plaintextBytes);
      if (failure === undefined) return { allowed: true, ruleId: rule.id };
      closest ??= `rule "${rule.id}": ${failure}`;
    }
    return {
      allowed: false,
      reason: closest ?? `no rule grants "${request.operation}" on [${request.keyNames.join(', ')}] to "${principal.id}"`,
    };
  }

  /**
   * A rewrap needs `rewrap` on the source and on the destination (decide, twice), and, on top,
   * a rule granting the source must accept the destination: its `rewrapTo` patterns, or without
   * them, a destination the principal may encrypt to itself with the stored context. Otherwise
   * a `rewrap` grant on several tenants' keys would move one tenant's data under another's key.
   */
  decideRewrapDestination(principal: Principal, request: RewrapDestinationRequest): Decision {
    if (request.destinationKeyNames.length === 0) return { allowed: false, reason: 'no destination key name to authorize' };
    let closest: string | undefined;
    for (const rule of this.#rules) {
      if (!appliesTo(rule, principal) || !rule.operations.has('rewrap')) continue;
      if (!request.sourceKeyNames.some(rule.matchKey)) continue;
      if (contextFailure(rule, principal, request.context) !== undefined) continue;
      const failure = this.#destinationFailure(rule, principal, request);
      if (failure === undefined) return { allowed: true, ruleId: rule.id };
      closest ??= `rule "${rule.id}": ${failure}`;
    }
    return { allowed: false, reason: closest ?? `no rule grants "rewrap" on [${request.sourceKeyNames.join(', ')}] to "${principal.id}"` };
  }

  #destinationFailure(rule: CompiledRule, principal: Principal, request: RewrapDestinationRequest): string | undefined {
    if (rule.rewrapTo !== undefined) {
      const allowed = rule.rewrapTo.some((template) => destinationMatches(template, request.context, request.destinationKeyNames));
      // Names the destination, never the expanded patterns: they hold context values.
      return allowed ? undefined : `destination [${request.destinationKeyNames.join(', ')}] is not in the rule's rewrapTo`;
    }
    const encrypt = this.decide(principal, {
      operation: 'encrypt',
      keyNames: request.destinationKeyNames,
      context: request.context,
      ...(request.plaintextBytes === undefined ? {} : { plaintextBytes: request.plaintextBytes }),
    });
    return encrypt.allowed
      ? undefined
      : `destination [${request.destinationKeyNames.join(', ')}] is not a key the principal may encrypt to, and the rule has no rewrapTo`;
  }

  /**
   * An admin operation (/v1/admin/...): it concerns no KMS key and no context, so it is decided
   * as `decide` on the key name `*` with an empty context: a rule grants it when it names the
   * operation and its keys match every key (`keys: ["*"]`, which the loader requires of rules
   * granting admin operations).
   */
  decideAdmin(principal: Principal, operation: AdminOperation): Decision {
    const decision = this.decide(principal, { operation, keyNames: ['*'], context: {} });
    if (decision.allowed) return decision;
    return { allowed: false, reason: `no rule grants "${operation}" to "${principal.id}"` };
  }

  /**
   * Whether some rule could allow this request for some key: `decide` without the key. When
   * none could, the request is denied before any KMS look-up, so a caller without a grant
   * costs KMS nothing and learns nothing about the key it named (existence or state).
   */
  couldAllow(principal: Principal, request: Omit<DecisionRequest, 'keyNames'>): boolean {
    return this.#rules.some(
      (rule) =>
        appliesTo(rule, principal) &&
        rule.operations.has(request.operation) &&
        contextFailure(rule, principal, request.context ?? {}) === undefined &&
        sizeFailure(rule, request.plaintextBytes) === undefined,
    );
  }

  /**
   * Whether any rule could allow this principal this operation at all, whatever the key, context
   * and size: a rule granting the operation that applies to the principal and whose claim
   * bindings it can satisfy. Cheap enough to ask before a request's body is read, so a caller
   * with no grant for the route costs no body buffering.
   */
  mayEverAllow(principal: Principal, operation: Operation): boolean {
    const rules = this.#rulesByOperation.get(operation) ?? [];
    return rules.some((rule) => appliesTo(rule, principal) && claimsSatisfiable(rule, principal));
  }

  /**
   * The rules that can apply to this principal. Rules whose claim bindings the principal cannot
   * satisfy (claim missing) are left out: they could never allow anything for it.
   */
  listGrants(principal: Principal): Grant[] {
    const grants: Grant[] = [];
    for (const rule of this.#rules) {
      if (!appliesTo(rule, principal)) continue;
      const equals = new Map(rule.equals);
      let satisfiable = true;
      for (const [key, binding] of rule.fromClaims) {
        const value = claimAsString(principal.claims, binding.path);
        if (value === undefined || (equals.has(key) && equals.get(key) !== value)) satisfiable = false;
        else equals.set(key, value);
      }
      // Grants on keys only: admin operations are about the replica, not a key.
      const operations = DATA_OPERATIONS.filter((op) => rule.operations.has(op));
      if (!satisfiable || operations.length === 0) continue;
      grants.push({
        ruleId: rule.id,
        keys: [...rule.spec.keys],
        operations,
        context: {
          required: [...new Set([...rule.required, ...equals.keys()])],
          equals: Object.fromEntries(equals),
          optional: [...(rule.spec.context?.optional ?? [])],
          allowOthers: rule.allowOthers,
        },
        ...(rule.maxPlaintextBytes === undefined ? {} : { maxPlaintextBytes: rule.maxPlaintextBytes }),
        ...(rule.spec.rewrapTo === undefined ? {} : { rewrapTo: [...rule.spec.rewrapTo] }),
      });
    }
    return grants;
  }
}

/**
 * For GET /v1/keys: the operations the grants give on a key known by `keyNames`, in the
 * canonical OPERATIONS order (empty when the caller may not use the key at all). Context
 * constraints still apply per request; this answers "could", not "will".
 */
export function operationsForKey(grants: readonly Grant[], keyNames: readonly string[]): Operation[] {
  const allowed = new Set<Operation>();
  for (const grant of grants) {
    const match = grantMatcher(grant);
    if (keyNames.some(match)) for (const op of grant.operations) allowed.add(op);
  }
  return OPERATIONS.filter((op) => allowed.has(op));
}

// GET /v1/keys calls operationsForKey once per key with the same grants: compile each grant's
// patterns once. Grants stay plain data (JSON-serializable), hence a side table.
const grantMatchers = new WeakMap<Grant, GlobMatcher>();
function grantMatcher(grant: Grant): GlobMatcher {
  let match = grantMatchers.get(grant);
  if (match === undefined) {
    match = compileGlobs(grant.keys);
    grantMatchers.set(grant, match);
  }
  return match;
}

function claimsSatisfiable(rule: CompiledRule, principal: Principal): boolean {
  for (const [key, binding] of rule.fromClaims) {
    const claim = claimAsString(principal.claims, binding.path);
    if (claim === undefined) return false;
    const fixed = rule.equals.get(key);
    if (fixed !== undefined && fixed !== claim) return false;
  }
  return true;
}

function contextFailure(rule: CompiledRule, principal: Principal, context: Readonly<Record<string, string>>): string | undefined {
  // Own, string-valued entries only: the context is caller-supplied (or read back from a
  // ciphertext) and must not reach Object.prototype through a missing key.
  const get = (key: string): string | undefined => {
    if (!Object.hasOwn(context, key)) return undefined;
    const value: unknown = context[key];
    return typeof value === 'string' ? value : undefined;
  };
  for (const key of rule.required) {
    if (get(key) === undefined) return `missing required context key "${key}"`;
  }
  for (const [key, expected] of rule.equals) {
    const value = get(key);
    if (value === undefined) return `missing required context key "${key}"`;
    if (value !== expected) return `context key "${key}" does not have the fixed value`;
  }
  for (const [key, binding] of rule.fromClaims) {
    const claim = claimAsString(principal.claims, binding.path);
    if (claim === undefined) return `principal has no string or number claim "${binding.ref}" for context key "${key}"`;
    const value = get(key);
    if (value === undefined) return `missing required context key "${key}"`;
    if (value !== claim) return `context key "${key}" does not equal the principal's claim "${binding.ref}"`;
  }
  if (!rule.allowOthers) {
    for (const key of Object.keys(context)) {
      if (!rule.namedKeys.has(key)) return `context key "${key}" is not allowed by the rule`;
    }
  }
  return undefined;
}

function sizeFailure(rule: CompiledRule, plaintextBytes: number | undefined): string | undefined {
  if (rule.maxPlaintextBytes === undefined || plaintextBytes === undefined) return undefined;
  // Written as !(a <= b) so that NaN fails closed.
  if (!(plaintextBytes <= rule.maxPlaintextBytes)) return `plaintext of ${plaintextBytes} bytes exceeds maxPlaintextBytes ${rule.maxPlaintextBytes}`;
  return undefined;
}

/** The principal id dev-token authentication produces. */
export const DEV_PRINCIPAL_ID = 'dev';

/**
 * Dev mode (no POLICY_FILE): the dev principal may do everything on every key with any context.
 * The app must only use this with the local provider, and warn loudly.
 */
export function devPolicy(): Policy {
  return new Policy([
    {
      id: 'dev-all',
      authMethods: ['dev-token'],
      principals: [DEV_PRINCIPAL_ID],
      operations: [...OPERATIONS],
      keys: ['*'],
      context: { allowOthers: true },
    },
  ]);
}
