/** What the admin routes share: their tag, their error responses, and the admin caller. */
import type { FastifyRequest } from 'fastify';
import type { AdminCaller } from '../../../operations/admin/admin.js';
import { COMMON_ERRORS, callerOf, problem, type V1Deps } from '../common.js';

export const ADMIN_TAG = 'admin';

/** Error statuses of the admin routes without a body. */
export const ADMIN_READ_ERRORS = { 401: COMMON_ERRORS[401], 403: COMMON_ERRORS[403], 429: COMMON_ERRORS[429], 503: COMMON_ERRORS[503] };

/** POST /v1/admin/policy/reload with an invalid file. */
export const POLICY_INVALID = problem(
  422,
  'The policy file is invalid; the policy in force is unchanged. `errors` lists every error with its line and column.',
  'PolicyInvalid',
  'the policy file is invalid; the policy in force is unchanged',
  undefined,
  { errors: [{ line: 14, column: 22, field: 'rules[1].operations[0]', message: 'unknown operation "encrpyt"; allowed: encrypt, decrypt, rewrap, datakey, datakey:plaintext, datakey:unwrap, admin:read, admin:cache, admin:policy' }] },
);

export function adminCallerOf(request: FastifyRequest, deps: V1Deps): AdminCaller {
  return { ...callerOf(request, deps), fromLoopback: isLoopbackAddress(request.socket.remoteAddress) };
}

/** The peer's own address (never a forwarded header): 127.0.0.0/8 or ::1, IPv4-mapped or not. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice('::ffff:'.length) : address;
  return address === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}
