/**
 * Policy file text -> validated PolicyFile, or PolicyError listing every problem with its
 * line, column and field. Pure and synchronous: no file system, no keys (policy-load.ts does
 * those), so every message here can be tested from a string.
 */
import Value from 'typebox/value';
import { isValidClaimRef } from './claims.js';
import { PolicyError, type PolicyIssue } from './errors.js';
import { PolicyFileSchema, type PolicyFile } from './policy-schema.js';
import { isAdminOperation } from './principal.js';
import { destinationPatternProblem } from './rewrap-destination.js';
import { pointerSegments, parseYamlSource, type PathSegment, type YamlSource } from './yaml-source.js';

export interface ValidatedPolicy {
  readonly spec: PolicyFile;
  readonly source: YamlSource;
}

export function validatePolicyText(text: string, file: string): ValidatedPolicy {
  const source = parseYamlSource(text, file);
  const schemaIssues = schemaErrors(source);
  if (schemaIssues.length > 0) throw new PolicyError(file, byPosition(schemaIssues));
  // The schema check passed, so the data has the schema's type.
  const spec = source.data as PolicyFile;
  const semanticIssues = crossFieldErrors(spec, source);
  if (semanticIssues.length > 0) throw new PolicyError(file, byPosition(semanticIssues));
  return { spec, source };
}

/** Top to bottom, as the operator reads the file. */
function byPosition(issues: PolicyIssue[]): PolicyIssue[] {
  return [...issues].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}

function schemaErrors(source: YamlSource): PolicyIssue[] {
  const errors = Value.Errors(PolicyFileSchema, source.data);
  // A union failure ("anyOf") also reports each branch's failure at the same path; keep the
  // union's own message only.
  const anyOfPaths = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  const issues: PolicyIssue[] = [];
  const seen = new Set<string>();
  const add = (issue: PolicyIssue) => {
    const key = `${issue.line}:${issue.column}:${issue.field}:${issue.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      issues.push(issue);
    }
  };
  for (const error of errors) {
    const path: PathSegment[] = pointerSegments(error.instancePath);
    if (error.keyword !== 'anyOf' && anyOfPaths.has(error.instancePath)) continue;
    switch (error.keyword) {
      case 'boolean':
        // `additionalProperties: false` reports each extra key twice; the keyword below wins.
        break;
      case 'additionalProperties':
        for (const name of error.params.additionalProperties) {
          add(source.issue([...path, name], `unknown field "${name}"`, 'key'));
        }
        break;
      case 'required':
        for (const name of (error.params as { requiredProperties: string[] }).requiredProperties) {
          add(source.issue([...path, name], 'required field is missing'));
        }
        break;
      case 'enum':
        add(source.issue(path, enumMessage(path, valueAt(source.data, path), error.params.allowedValues)));
        break;
      case 'const':
        add(source.issue(path, `must be ${JSON.stringify(error.params.allowedValue)}`));
        break;
      case 'anyOf':
        add(source.issue(path, anyOfMessage(path)));
        break;
      case 'pattern':
        add(source.issue(path, patternMessage(path)));
        break;
      default:
        add(source.issue(path, error.message));
    }
  }
  return issues;
}

function enumMessage(path: readonly PathSegment[], value: unknown, allowed: readonly unknown[]): string {
  const shown = typeof value === 'string' ? `"${value.slice(0, 64)}"` : JSON.stringify(value);
  if (path.includes('algorithms') && typeof value === 'string' && /^(HS\d+|none)$/i.test(value)) {
    return (
      `algorithm ${shown} is refused: only asymmetric algorithms are allowed ` +
      `(an HMAC key would be the public JWKS itself, and "none" is no signature); allowed: ${allowed.join(', ')}`
    );
  }
  const what = path.includes('operations')
    ? 'operation'
    : path.includes('algorithms')
      ? 'algorithm'
      : path.includes('authMethods')
        ? 'authentication method'
        : 'value';
  return `unknown ${what} ${shown}; allowed: ${allowed.join(', ')}`;
}

function anyOfMessage(path: readonly PathSegment[]): string {
  if (path.includes('audience')) return 'must be a string or a list of strings';
  if (path.includes('claims')) return 'claim values must be strings or numbers';
  return 'has the wrong type';
}

function patternMessage(path: readonly PathSegment[]): string {
  // Never echo the value: a pasted token instead of its hash would end up in the logs.
  if (path.at(-1) === 'sha256') return 'must be 64 hex characters: the SHA-256 of the token (printf %s "$TOKEN" | sha256sum)';
  if (path.at(-1) === 'id') return 'must be 1-128 characters: letters, digits and . _ : / - (starting with a letter or digit)';
  if (path.at(-1) === 'tenant') return 'a tenant name must be 1-128 characters: letters, digits and . _ : / - (starting with a letter or digit)';
  return 'has an invalid format';
}

function valueAt(data: unknown, path: readonly PathSegment[]): unknown {
  let current = data;
  for (const segment of path) {
    if (current === null || typeof current !== 'object') return undefined;
    const key = String(segment);
    if (!Object.hasOwn(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Rules the schema cannot express. */
function crossFieldErrors(spec: PolicyFile, source: YamlSource): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  const { apiKeys = [], jwt } = spec.authentication;

  if (apiKeys.length === 0 && jwt === undefined) {
    issues.push(source.issue(['authentication'], 'no way to authenticate: configure apiKeys, jwt, or both'));
  }

  const hashes = new Map<string, number>();
  apiKeys.forEach((key, index) => {
    const digest = key.sha256.toLowerCase();
    const first = hashes.get(digest);
    if (first !== undefined) {
      issues.push(source.issue(['authentication', 'apiKeys', index, 'sha256'], `same hash as apiKeys[${first}]: one token cannot be two principals`));
    } else {
      hashes.set(digest, index);
    }
  });

  if (jwt !== undefined) {
    if ((jwt.jwksFile === undefined) === (jwt.jwksUrl === undefined)) {
      issues.push(source.issue(['authentication', 'jwt'], 'exactly one of jwksFile and jwksUrl is required'));
    }
    if (jwt.tenantClaim !== undefined && !isValidClaimRef(jwt.tenantClaim)) {
      issues.push(source.issue(['authentication', 'jwt', 'tenantClaim'], 'must be a claim name or a JSON Pointer such as /kubernetes.io/namespace'));
    }
    if (jwt.jwksUrl !== undefined) {
      const problem = jwksUrlProblem(jwt.jwksUrl);
      if (problem) issues.push(source.issue(['authentication', 'jwt', 'jwksUrl'], problem));
    }
  }

  const ruleIds = new Map<string, number>();
  spec.rules.forEach((rule, index) => {
    const first = ruleIds.get(rule.id);
    if (first !== undefined) issues.push(source.issue(['rules', index, 'id'], `duplicate rule id "${rule.id}" (first used by rules[${first}])`));
    else ruleIds.set(rule.id, index);

    // With both methods configured, a rule must say whose it is: an API key and a JWT subject
    // with the same name are different callers, and guessing would grant one the other's rights.
    if (apiKeys.length > 0 && jwt !== undefined && rule.authMethods === undefined) {
      issues.push(
        source.issue(
          ['rules', index, 'id'],
          'both apiKeys and jwt are configured: say which callers this rule is for with authMethods: [api-key], [jwt] or [api-key, jwt]',
        ),
      );
    }
    // Admin operations concern the replica, not a key: a rule granting them says so plainly, and
    // never also grants data operations (keys: ["*"] would grant them on every key).
    if (rule.operations.some(isAdminOperation)) {
      if (!rule.operations.every(isAdminOperation)) {
        issues.push(source.issue(['rules', index, 'operations'], 'admin operations (admin:*) go in a rule of their own, without data operations'));
      }
      if (rule.keys.length !== 1 || rule.keys[0] !== '*') {
        issues.push(source.issue(['rules', index, 'keys'], 'a rule granting admin operations must have keys: ["*"] (they concern no KMS key)'));
      }
      for (const field of ['context', 'maxPlaintextBytes', 'rewrapTo'] as const) {
        if (rule[field] !== undefined) issues.push(source.issue(['rules', index, field], `${field} does not apply to admin operations`, 'key'));
      }
    }
    if (rule.rewrapTo !== undefined && !rule.operations.includes('rewrap')) {
      issues.push(source.issue(['rules', index, 'rewrapTo'], 'rewrapTo only applies to rules that grant rewrap', 'key'));
    }
    rule.rewrapTo?.forEach((pattern, patternIndex) => {
      const problem = destinationPatternProblem(pattern);
      if (problem) issues.push(source.issue(['rules', index, 'rewrapTo', patternIndex], problem));
    });

    const equals = rule.context?.equals ?? {};
    for (const [key, ref] of Object.entries(rule.context?.fromClaims ?? {})) {
      const path = ['rules', index, 'context', 'fromClaims', key];
      if (!isValidClaimRef(ref)) issues.push(source.issue(path, 'must be a claim name or a JSON Pointer such as /kubernetes.io/namespace'));
      if (Object.hasOwn(equals, key)) issues.push(source.issue(path, `context key "${key}" is also in equals: use one or the other`));
    }
  });
  return issues;
}

function jwksUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an absolute URL';
  }
  if (url.protocol === 'https:') return undefined;
  // Plain HTTP would let anyone on the path substitute their own signing keys; allowed only to
  // a loopback address (a local sidecar, the test suite).
  if (url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname)) return undefined;
  return 'must be an https:// URL (http:// only to localhost)';
}
