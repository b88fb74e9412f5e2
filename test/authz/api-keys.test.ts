import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AuthenticationError } from '../../src/authz/errors.js';
import { createAuthenticator, createDevAuthenticator, type Authenticator } from '../../src/authz/authenticator.js';
import { bearerToken, looksLikeJwt } from '../../src/authz/bearer.js';

const hash = (token: string) => createHash('sha256').update(token).digest('hex');
const TOKEN_A = 'k7Jm2pQ9-wX4_zR8vN3bT6yH1cF5dL0sA';
const TOKEN_B = 'second-service-token-0123456789';

const authenticator = createAuthenticator({
  apiKeys: [
    { name: 'svc-a', sha256: hash(TOKEN_A), claims: { tenant: 'a', constructor: 'x' } },
    { name: 'svc-b', sha256: hash(TOKEN_B).toUpperCase() }, // hex case does not matter
    { name: 'svc-a', sha256: hash('svc-a-rotated-token') }, // rotation: same name, second token
  ],
});

async function failure(auth: Authenticator, header: string | undefined): Promise<AuthenticationError> {
  const error = await auth.authenticate(header).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(AuthenticationError);
  return error as AuthenticationError;
}

describe('API keys', () => {
  it('accepts the right token and returns the key\'s principal and static claims', async () => {
    const principal = await authenticator.authenticate(`Bearer ${TOKEN_A}`);
    expect(principal.id).toBe('svc-a');
    expect(principal.authMethod).toBe('api-key');
    expect(principal.claims['tenant']).toBe('a');
    expect(Object.isFrozen(principal)).toBe(true);
    expect((await authenticator.authenticate(`Bearer ${TOKEN_B}`)).id).toBe('svc-b');
    expect((await authenticator.authenticate('Bearer svc-a-rotated-token')).id).toBe('svc-a');
  });

  it('accepts any case of the scheme and surrounding spaces', async () => {
    expect((await authenticator.authenticate(`bearer ${TOKEN_A}`)).id).toBe('svc-a');
    expect((await authenticator.authenticate(`BEARER   ${TOKEN_A} `)).id).toBe('svc-a');
  });

  it.each([
    ['missing header', undefined, 'missing_credentials'],
    ['empty header', '', 'missing_credentials'],
    ['wrong token', 'Bearer not-the-token', 'unknown_api_key'],
    ['token with a suffix', `Bearer ${TOKEN_A}x`, 'unknown_api_key'],
    ['token prefix', `Bearer ${TOKEN_A.slice(0, -1)}`, 'unknown_api_key'],
    ['the hash instead of the token', `Bearer ${hash(TOKEN_A)}`, 'unknown_api_key'],
    ['Basic scheme', `Basic ${Buffer.from(`u:${TOKEN_A}`).toString('base64')}`, 'unsupported_scheme'],
    ['bare token', TOKEN_A, 'unsupported_scheme'],
    ['Bearer without token', 'Bearer', 'malformed_token'],
    ['Bearer with spaces only', 'Bearer   ', 'malformed_token'],
    ['two tokens', `Bearer ${TOKEN_A} ${TOKEN_B}`, 'malformed_token'],
    ['illegal characters', `Bearer ${TOKEN_A}"`, 'malformed_token'],
    ['huge header', `Bearer ${'a'.repeat(10_000)}`, 'malformed_token'],
  ] as const)('refuses %s', async (_name, header, reason) => {
    const error = await failure(authenticator, header);
    expect(error.reason).toBe(reason);
    expect(error.code).toBe('unauthenticated');
  });

  it('never puts the token in the error', async () => {
    const secret = 'super-secret-presented-token-value';
    const error = await failure(authenticator, `Bearer ${secret}`);
    expect(error.message).not.toContain(secret);
    expect(JSON.stringify({ ...error, message: error.message, stack: error.stack })).not.toContain(secret);
    expect(error.message).not.toContain(hash(secret));
  });

  it('a JWT-shaped token goes to the JWT path, which is off here', async () => {
    const header = Buffer.from(JSON.stringify({ alg: 'RS256' })).toString('base64url');
    const error = await failure(authenticator, `Bearer ${header}.e30.sig`);
    expect(error.reason).toBe('jwt_not_configured');
  });

  it('claim names like constructor are plain data', async () => {
    const principal = await authenticator.authenticate(`Bearer ${TOKEN_A}`);
    expect(Object.getPrototypeOf(principal.claims)).toBe(null);
    expect(principal.claims['constructor']).toBe('x');
  });
});

describe('dev token', () => {
  const dev = createDevAuthenticator('dev-token');

  it('accepts the dev token as principal "dev" with method dev-token', async () => {
    expect(await dev.authenticate('Bearer dev-token')).toEqual({ id: 'dev', authMethod: 'dev-token', claims: {} });
  });

  it.each([
    ['wrong', 'Bearer dev-tokem', 'invalid_dev_token'],
    ['longer', 'Bearer dev-token-and-more', 'invalid_dev_token'],
    ['shorter', 'Bearer dev', 'invalid_dev_token'],
    ['missing', undefined, 'missing_credentials'],
    ['non-bearer', 'Token dev-token', 'unsupported_scheme'],
  ] as const)('refuses a %s token', async (_name, header, reason) => {
    expect((await failure(dev, header)).reason).toBe(reason);
  });

  it('refuses a configured dev token that no Bearer header could carry', () => {
    expect(() => createDevAuthenticator('')).toThrow(/DEV_TOKEN/);
    expect(() => createDevAuthenticator('has space')).toThrow(/DEV_TOKEN/);
    expect(() => createDevAuthenticator('quote"d')).toThrow(/DEV_TOKEN/);
  });
});

describe('token classification', () => {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

  it.each([
    [`${part({ alg: 'RS256', kid: 'k' })}.${part({ sub: 'x' })}.c2ln`, true],
    [`${part({ alg: 'none' })}.${part({ sub: 'x' })}.`, true], // unsigned: still a JWT, refused there
    [`${part({ typ: 'JWT' })}.${part({})}.c2ln`, false], // no alg
    [`${part(['alg'])}.${part({})}.c2ln`, false],
    ['abc.def.ghi', false], // does not decode to JSON
    ['plain-api-key', false],
    ['a.b', false],
    [`${part({ alg: 'RS256' })}.${part({})}.c2ln.extra`, false],
  ])('%s -> JWT? %s', (token, expected) => {
    expect(looksLikeJwt(token)).toBe(expected);
  });

  it('bearerToken extracts the b64token', () => {
    expect(bearerToken('Bearer abc+/=')).toBe('abc+/=');
  });
});
