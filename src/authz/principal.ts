/**
 * Who is calling. Produced by authentication, consumed by the policy and the audit trail.
 */
export type AuthMethod = 'dev-token' | 'api-key' | 'jwt';

export interface Principal {
  /** Stable identifier: the API key's name, or the JWT `sub`. */
  readonly id: string;
  readonly authMethod: AuthMethod;
  /**
   * Claims usable by policy bindings (e.g. `tenant`). For API keys these are the static
   * claims the policy file gives the key; for JWTs, the verified token's payload.
   */
  readonly claims: Readonly<Record<string, unknown>>;
  /**
   * The tenant the policy puts this principal in (docs/POLICY.md, "Tenants"): its principals
   * share one data-key cache share and one KMS budget. Undefined: the principal is alone.
   */
  readonly tenant?: string;
}


/** The operations on KMS keys and data (judged per key and context). */
export const DATA_OPERATIONS = ['encrypt', 'decrypt', 'rewrap', 'datakey', 'datakey:plaintext', 'datakey:unwrap'] as const;
/**
 * The admin API's operations (/v1/admin/...): they act on the replica that answers, not on a
 * KMS key, so a rule grants them with `keys: ["*"]` and no other constraint (docs/POLICY.md).
 */
export const ADMIN_OPERATIONS = ['admin:read', 'admin:cache', 'admin:policy'] as const;
/** The operations a policy rule can grant. */
export const OPERATIONS = [...DATA_OPERATIONS, ...ADMIN_OPERATIONS] as const;
export type Operation = (typeof OPERATIONS)[number];
export type AdminOperation = (typeof ADMIN_OPERATIONS)[number];

export function isAdminOperation(operation: string): operation is AdminOperation {
  return (ADMIN_OPERATIONS as readonly string[]).includes(operation);
}
