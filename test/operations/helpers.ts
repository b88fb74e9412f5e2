/**
 * The service for the operations' own tests: built through the composition root (compose, via
 * buildTestService) on the embedded local provider in a temp dir (or the AWS SDK provider
 * against local-kms), with a policy file of API
 * keys, and callers authenticated by the policy's own authenticator, as the HTTP edge does.
 * No HTTP: the tests call src/operations/ directly.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalKeyProvider } from '../../src/kms/local.js';
import type { AdminCaller } from '../../src/operations/admin/admin.js';
import { newCaller, type Caller } from '../../src/operations/operation.js';
import { buildTestService, countingProvider, type ProviderKind, type TestService } from '../helpers/app.js';

export const sha256 = (token: string): string => createHash('sha256').update(token).digest('hex');

/** Tokens: token-billing (data on alias/default and alias/archive, tenant acme), token-auditor (admin), token-stranger (nothing). */
export const POLICY = `version: 1
authentication:
  apiKeys:
    - name: billing
      sha256: "${sha256('token-billing')}"
    - name: auditor
      sha256: "${sha256('token-auditor')}"
    - name: stranger
      sha256: "${sha256('token-stranger')}"
rules:
  - id: billing-data
    principals: [billing]
    operations: [encrypt, decrypt, rewrap, datakey]
    keys: [alias/default, alias/archive]
    context:
      equals: { tenant: acme }
  - id: auditor-admin
    principals: [auditor]
    operations: ["admin:read", "admin:cache", "admin:policy"]
    keys: ["*"]
`;

export interface OperationsFixture extends TestService {
  /** KMS calls that reached the provider, per KMS operation name (GenerateDataKey, Decrypt...). */
  kmsCalls: Record<string, number>;
  policyFile: string;
  /** The embedded provider itself, to manage its keys (createKey, createAlias, disableKey); local only. */
  local: LocalKeyProvider | undefined;
  /** A fresh caller (one per request, as the edge makes them) for this token. */
  caller(token: string): Promise<Caller>;
  adminCaller(token: string, fromLoopback?: boolean): Promise<AdminCaller>;
}

/** `endpoint`: for 'aws', this KMS endpoint instead of the shared local-kms (e.g. a proxy in front of it). */
export async function buildOperationsFixture(kind: ProviderKind = 'local', options: { endpoint?: string } = {}): Promise<OperationsFixture> {
  const policyDir = mkdtempSync(join(tmpdir(), 'envelope-ops-policy-'));
  const policyFile = join(policyDir, 'policy.yaml');
  writeFileSync(policyFile, POLICY);
  let counted: ReturnType<typeof countingProvider> | undefined;
  let local: LocalKeyProvider | undefined;
  const built = await buildTestService({
    provider: kind,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    policyFile,
    wrapProvider: (provider) => {
      if (provider instanceof LocalKeyProvider) local = provider;
      return (counted = countingProvider(provider));
    },
  });
  const caller = async (token: string): Promise<Caller> => {
    const snapshot = built.service.policy.current;
    const principal = await snapshot.authenticator.authenticate(`Bearer ${token}`);
    return newCaller(built.service.operations, principal, snapshot.policy);
  };
  return {
    ...built,
    kmsCalls: counted!.calls,
    policyFile,
    local,
    caller,
    adminCaller: async (token, fromLoopback = true) => ({ ...(await caller(token)), fromLoopback, requestId: 'test-request' }),
    async close() {
      await built.close();
      rmSync(policyDir, { recursive: true, force: true });
    },
  };
}
