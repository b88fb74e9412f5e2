/**
 * Policy file on disk -> LoadedPolicy: the compiled rules plus the authenticator its
 * `authentication` section describes. Everything a request needs is built here, up front, so a
 * bad file (or a bad JWKS file it points to) is refused at load/reload time, never mid-request.
 */
import { createHash, createPublicKey, type JsonWebKey } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { JSONWebKeySet } from 'jose';
import { createAuthenticator, type Authenticator } from './authenticator.js';
import { PolicyError } from './errors.js';
import { Policy, type RuleSpec } from './policy.js';
import type { JwtSettings, PolicyFile } from './policy-schema.js';
import { validatePolicyText } from './policy-validate.js';
import type { JwtVerifierOptions } from './jwt.js';
import type { YamlSource } from './yaml-source.js';

/** Policy and JWKS files are small; anything bigger is a mistake (or an attack on memory). */
const MAX_FILE_BYTES = 1024 * 1024;

export interface LoadedPolicy {
  /** The path as given (for messages). */
  readonly file: string;
  /** Hex SHA-256 of the file's bytes: logged on load, so "which policy was live?" has an answer. */
  readonly digest: string;
  readonly policy: Policy;
  readonly authenticator: Authenticator;
  readonly summary: { readonly rules: number; readonly apiKeys: number; readonly jwt: 'file' | 'url' | 'none' };
}

export async function loadPolicyFile(file: string): Promise<LoadedPolicy> {
  const bytes = await readSmallFile(file, (message) => new PolicyError(file, [{ field: '', message }]));
  const { spec, source } = validatePolicyText(bytes.toString('utf8'), file);
  const baseDir = dirname(resolve(file));

  const jwt = spec.authentication.jwt === undefined ? undefined : await jwtOptions(spec.authentication.jwt, baseDir, source);
  const apiKeys = spec.authentication.apiKeys ?? [];
  const policy = new Policy(withAuthMethods(spec));
  return {
    file,
    digest: createHash('sha256').update(bytes).digest('hex'),
    policy,
    authenticator: withRuleTenants(createAuthenticator({ apiKeys, ...(jwt === undefined ? {} : { jwt }) }), policy),
    summary: {
      rules: spec.rules.length,
      apiKeys: apiKeys.length,
      jwt: spec.authentication.jwt === undefined ? 'none' : spec.authentication.jwt.jwksUrl !== undefined ? 'url' : 'file',
    },
  };
}

/**
 * A rule without `authMethods` is for the only method the file configures (validation refuses
 * such a rule when the file configures both), so files with one method keep their meaning.
 */
function withAuthMethods(spec: PolicyFile): RuleSpec[] {
  const only = spec.authentication.jwt === undefined ? 'api-key' : 'jwt';
  return spec.rules.map((rule) => ({ ...rule, authMethods: rule.authMethods ?? [only] }));
}

/**
 * A principal with no tenant of its own (an API key's `tenant`, the JWT's `tenantClaim`) gets
 * the one its rules name, if any: resolved once, at authentication, so every per-tenant
 * structure sees the same answer for the whole request.
 */
function withRuleTenants(authenticator: Authenticator, policy: Policy): Authenticator {
  return {
    async authenticate(authorizationHeader) {
      const principal = await authenticator.authenticate(authorizationHeader);
      if (principal.tenant !== undefined) return principal;
      const tenant = policy.tenantOf(principal);
      return tenant === undefined ? principal : Object.freeze({ ...principal, tenant });
    },
  };
}

async function jwtOptions(settings: JwtSettings, baseDir: string, source: YamlSource): Promise<JwtVerifierOptions> {
  const common = {
    issuer: settings.issuer,
    audience: settings.audience,
    algorithms: settings.algorithms,
    ...(settings.principalClaim === undefined ? {} : { principalClaim: settings.principalClaim }),
    ...(settings.tenantClaim === undefined ? {} : { tenantClaim: settings.tenantClaim }),
    ...(settings.clockToleranceSeconds === undefined ? {} : { clockToleranceSeconds: settings.clockToleranceSeconds }),
    ...(settings.maxTokenAgeSeconds === undefined ? {} : { maxTokenAgeSeconds: settings.maxTokenAgeSeconds }),
  };
  if (settings.jwksUrl !== undefined) return { ...common, jwks: { kind: 'url', url: new URL(settings.jwksUrl) } };

  // validatePolicyText guarantees exactly one of the two is set.
  const relative = settings.jwksFile ?? '';
  const path = resolve(baseDir, relative);
  const fail = (message: string) => new PolicyError(source.file, [source.issue(['authentication', 'jwt', 'jwksFile'], `JWKS file ${relative}: ${message}`)]);
  const bytes = await readSmallFile(path, fail);
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw fail('not valid JSON');
  }
  const problem = jwksProblem(parsed);
  if (problem !== undefined) throw fail(problem);
  return { ...common, jwks: { kind: 'keys', keys: parsed as JSONWebKeySet } };
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k', 'priv'];

/** Public asymmetric signature keys only; each one must import. */
function jwksProblem(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object' || !Object.hasOwn(value, 'keys')) return 'must be a JSON object with a "keys" array';
  const keys: unknown = (value as { keys: unknown }).keys;
  if (!Array.isArray(keys) || keys.length === 0) return '"keys" must be a non-empty array';
  for (const [index, key] of keys.entries()) {
    if (key === null || typeof key !== 'object') return `keys[${index}] is not an object`;
    const kty: unknown = Object.hasOwn(key, 'kty') ? (key as { kty: unknown }).kty : undefined;
    if (kty !== 'RSA' && kty !== 'EC' && kty !== 'OKP') return `keys[${index}]: kty must be RSA, EC or OKP (symmetric keys are refused)`;
    const secret = PRIVATE_MEMBERS.find((member) => Object.hasOwn(key, member));
    if (secret !== undefined) return `keys[${index}] contains private key material ("${secret}"): publish public keys only`;
    try {
      createPublicKey({ key: key as JsonWebKey, format: 'jwk' });
    } catch {
      return `keys[${index}] is not a valid public key`;
    }
  }
  return undefined;
}

async function readSmallFile(path: string, fail: (message: string) => Error): Promise<Buffer> {
  try {
    const info = await stat(path);
    if (!info.isFile()) throw fail('not a regular file');
    if (info.size > MAX_FILE_BYTES) throw fail(`larger than ${MAX_FILE_BYTES} bytes`);
    return await readFile(path);
  } catch (error) {
    if (error instanceof PolicyError) throw error;
    throw fail(`cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}
