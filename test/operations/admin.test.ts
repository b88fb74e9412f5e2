/**
 * The admin operations called directly (no HTTP), on the service as compose() builds it: each
 * is granted by its own admin operation, acts on this replica's cache, policy and KMS view, and
 * reports its facts for the audit event.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheState } from '../../src/operations/admin/cache-state.js';
import { evictDataKeys } from '../../src/operations/admin/evict.js';
import { kmsState } from '../../src/operations/admin/kms-state.js';
import { policyState } from '../../src/operations/admin/policy-state.js';
import { reloadPolicy } from '../../src/operations/admin/reload-policy.js';
import { encrypt } from '../../src/operations/encrypt.js';
import { AccessDeniedError } from '../../src/operations/errors.js';
import { buildOperationsFixture, POLICY, type OperationsFixture } from './helpers.js';

const ACME = { tenant: 'acme' };

let t: OperationsFixture;
beforeAll(async () => {
  t = await buildOperationsFixture();
});
afterAll(async () => t?.close());

async function encryptOnce(): Promise<{ cacheHit: boolean | undefined }> {
  const outcome = await encrypt(t.service.operations, await t.caller('token-billing'), { plaintext: Buffer.from('hi'), keyId: undefined, context: ACME, aad: undefined });
  if (!outcome.ok) throw outcome.error;
  return { cacheHit: outcome.facts.dataKey?.cacheHit };
}

describe('admin operations', () => {
  it('cache state: the auditor sees the cached data key under its key and owner; the facts count it and name the rule', async () => {
    await encryptOnce();
    const outcome = await cacheState(t.service.admin, await t.adminCaller('token-auditor'));
    if (!outcome.ok) throw outcome.error;
    const encryptCache = outcome.value.caches.find((cache) => cache.kind === 'encrypt')!;
    expect(encryptCache.entries).toBe(1);
    expect(encryptCache.principals).toEqual([expect.objectContaining({ principal: 'api-key:billing', entries: 1 })]);
    // The decrypt cache holds the copy encrypt offered it (CACHE_SEED_DECRYPT), under the same owner.
    const decryptCache = outcome.value.caches.find((cache) => cache.kind === 'decrypt')!;
    expect(decryptCache.principals).toEqual([expect.objectContaining({ principal: 'api-key:billing', entries: 1 })]);
    expect(outcome.facts).toMatchObject({ ruleId: 'auditor-admin', responseElements: { cachedKeys: 2 } });
  });

  it('denied without an admin grant: 403, the reason names the principal and the admin operation', async () => {
    const outcome = await cacheState(t.service.admin, await t.adminCaller('token-billing'));
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.error).toBeInstanceOf(AccessDeniedError);
    expect(outcome.facts.denyReason).toBe('no rule grants "admin:read" to "billing"');
    expect(outcome.facts.ruleId).toBeUndefined();
  });

  it('evict by key drops the cached data keys (zeroed): the next encrypt is a miss again', async () => {
    await encryptOnce();
    expect((await encryptOnce()).cacheHit).toBe(true);
    const outcome = await evictDataKeys(t.service.admin, await t.adminCaller('token-auditor'), { keyId: 'alias/default' });
    if (!outcome.ok) throw outcome.error;
    expect(outcome.value.encrypt).toBeGreaterThanOrEqual(1);
    expect(outcome.facts).toMatchObject({ requestParameters: { keyId: 'alias/default' }, ruleId: 'auditor-admin', responseElements: { droppedKeys: outcome.value.dropped } });
    expect((await encryptOnce()).cacheHit).toBe(false);
  });

  it('evict with no scope is refused (400), so a forgotten field never empties the cache', async () => {
    await encryptOnce();
    const outcome = await evictDataKeys(t.service.admin, await t.adminCaller('token-auditor'), {});
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.error).toMatchObject({ status: 400, code: 'InvalidEvictionScope' });
    expect((await encryptOnce()).cacheHit).toBe(true);
  });

  it('kms state: the provider, a closed breaker and the billing principal\'s budget', async () => {
    const outcome = await kmsState(t.service.admin, await t.adminCaller('token-auditor'));
    if (!outcome.ok) throw outcome.error;
    expect(outcome.value.provider).toBe('local');
    expect(outcome.value.breaker.state).toBe('closed');
    expect(outcome.value.budgets.map((budget) => budget.principal)).toContain('api-key:billing');
  });

  it('reload: an invalid file is refused (422) and the policy in force stays; a valid one is swapped in', async () => {
    const before = await policyState(t.service.admin, await t.adminCaller('token-auditor'));
    if (!before.ok) throw before.error;

    writeFileSync(t.policyFile, 'version: 1\nrules: [{ id: broken }]\n');
    const refused = await reloadPolicy(t.service.admin, await t.adminCaller('token-auditor'));
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    expect(refused.error).toMatchObject({ status: 422, code: 'PolicyInvalid' });
    expect(refused.facts.responseElements).toEqual({ policyDigest: before.value.digest, policyReloaded: false });
    await encryptOnce(); // still allowed under the policy in force (it throws otherwise)

    writeFileSync(t.policyFile, POLICY.replace('id: billing-data', 'id: billing-data-v2'));
    const reloaded = await reloadPolicy(t.service.admin, await t.adminCaller('token-auditor'));
    if (!reloaded.ok) throw reloaded.error;
    expect(reloaded.value.changed).toBe(true);
    expect(reloaded.facts.responseElements).toEqual({ policyDigest: reloaded.value.digest, policyReloaded: true });
    const allowed = await encrypt(t.service.operations, await t.caller('token-billing'), { plaintext: Buffer.from('hi'), keyId: undefined, context: ACME, aad: undefined });
    expect(allowed.ok && allowed.facts.ruleId).toBe('billing-data-v2');
  });
});
