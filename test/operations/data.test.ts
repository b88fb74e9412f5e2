/**
 * The data operations called directly (no HTTP), on the service as compose() builds it: what a
 * caller gets, and the audit facts the edge would write, for allowed and denied calls.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueDataKey } from '../../src/operations/datakey.js';
import { decrypt } from '../../src/operations/decrypt.js';
import { encrypt } from '../../src/operations/encrypt.js';
import { AccessDeniedError } from '../../src/operations/errors.js';
import { listKeys } from '../../src/operations/keys.js';
import { rewrap } from '../../src/operations/rewrap.js';
import { buildOperationsFixture, type OperationsFixture } from './helpers.js';

const ACME = { tenant: 'acme' };
const HELLO = Buffer.from('hello, operations');

let t: OperationsFixture;
let defaultArn: string;
let archiveArn: string;
beforeAll(async () => {
  t = await buildOperationsFixture();
  const local = t.local!;
  defaultArn = (await local.describeKey('alias/default')).keyArn;
  const archive = await local.createKey();
  await local.createAlias('alias/archive', archive.keyId);
  archiveArn = archive.keyArn;
});
afterAll(async () => t?.close());

const plaintext = () => Buffer.from(HELLO);

describe('encrypt', () => {
  it('allowed: returns an ev1 ciphertext under the resolved key, with the facts of the request, the rule and the data key', async () => {
    const allowed = await encrypt(t.service.operations, await t.caller('token-billing'), { plaintext: plaintext(), keyId: undefined, context: ACME, aad: Buffer.from('order-1') });
    if (!allowed.ok) throw allowed.error;
    expect(allowed.value.ciphertext).toMatch(/^ev1:/);
    expect(allowed.value.keyId).toBe(defaultArn);
    expect(allowed.facts).toMatchObject({
      requestParameters: { keyId: 'alias/default', encryptionContext: ACME, plaintextBytes: HELLO.length, aadBytes: 7 },
      resolvedKeyId: defaultArn,
      ruleId: 'billing-data',
      responseElements: { keyId: defaultArn, ciphertextBytes: allowed.value.ciphertext.length },
      dataKey: { cacheHit: false, coalesced: false },
    });
    expect(allowed.facts.denyReason).toBeUndefined();
    expect(allowed.facts.kmsRequestIds.length).toBeGreaterThan(0);
  });

  it('the second encrypt under the same key and context is a cache hit: same data key, no KMS call', async () => {
    const context = { tenant: 'acme' };
    const first = await encrypt(t.service.operations, await t.caller('token-billing'), { plaintext: plaintext(), keyId: 'alias/archive', context, aad: undefined });
    if (!first.ok) throw first.error;
    const generated = t.kmsCalls.GenerateDataKey ?? 0;
    expect(generated).toBeGreaterThan(0);
    const second = await encrypt(t.service.operations, await t.caller('token-billing'), { plaintext: plaintext(), keyId: 'alias/archive', context, aad: undefined });
    if (!second.ok) throw second.error;
    expect(first.facts.dataKey?.cacheHit).toBe(false);
    expect(second.facts.dataKey).toEqual({ ...first.facts.dataKey, cacheHit: true });
    expect(t.kmsCalls.GenerateDataKey ?? 0).toBe(generated);
    // On a hit, the KMS request id is that of the GenerateDataKey that produced the key (the
    // first call also has its DescribeKey's; the second finds the key resolved already).
    expect(second.facts.kmsRequestIds).toHaveLength(1);
    expect(first.facts.kmsRequestIds).toEqual(expect.arrayContaining(second.facts.kmsRequestIds));
    expect(second.value.ciphertext).not.toBe(first.value.ciphertext);
  });

  it('denied: a 403 AccessDenied with the failed rule in the deny reason, the request in the facts, and no KMS data key', async () => {
    const generated = t.kmsCalls.GenerateDataKey ?? 0;
    const outcome = await encrypt(t.service.operations, await t.caller('token-billing'), { plaintext: plaintext(), keyId: 'alias/default', context: { tenant: 'globex' }, aad: undefined });
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.error).toBeInstanceOf(AccessDeniedError);
    expect(outcome.error).toMatchObject({ status: 403, code: 'AccessDenied' });
    // The reason is for the audit log: it names the rule that came closest.
    expect(outcome.facts.denyReason).toMatch(/^rule "billing-data": /);
    expect(outcome.facts.ruleId).toBeUndefined();
    expect(outcome.facts.requestParameters).toMatchObject({ keyId: 'alias/default', encryptionContext: { tenant: 'globex' }, plaintextBytes: HELLO.length });
    expect(outcome.facts.dataKey).toBeUndefined();
    expect(t.kmsCalls.GenerateDataKey ?? 0).toBe(generated);
  });

  it('a principal no rule names is denied with a reason naming it and the operation', async () => {
    const outcome = await encrypt(t.service.operations, await t.caller('token-stranger'), { plaintext: plaintext(), keyId: undefined, context: ACME, aad: undefined });
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.error).toBeInstanceOf(AccessDeniedError);
    expect(outcome.facts.denyReason).toContain('"stranger"');
    expect(outcome.facts.denyReason).toContain('encrypt');
  });
});

describe('decrypt', () => {
  async function sealed(keyId: string): Promise<string> {
    const outcome = await encrypt(t.service.operations, await t.caller('token-billing'), { plaintext: plaintext(), keyId, context: ACME, aad: undefined });
    if (!outcome.ok) throw outcome.error;
    return outcome.value.ciphertext;
  }

  it('allowed: the plaintext, the stored key and context, with the facts of the ciphertext and the rule', async () => {
    const ciphertext = await sealed('alias/default');
    const outcome = await decrypt(t.service.operations, await t.caller('token-billing'), { ciphertext, expectedContext: ACME, aad: undefined });
    if (!outcome.ok) throw outcome.error;
    expect(outcome.value.plaintext.equals(HELLO)).toBe(true);
    expect(outcome.value.keyArn).toBe(defaultArn);
    expect({ ...outcome.value.context }).toEqual(ACME);
    expect(outcome.facts).toMatchObject({
      requestParameters: { keyId: defaultArn, encryptionContext: ACME, ciphertextBytes: ciphertext.length },
      ruleId: 'billing-data',
      responseElements: { keyId: defaultArn, plaintextBytes: HELLO.length },
    });
    outcome.value.plaintext.fill(0);
  });

  it('the second decrypt of the same ciphertext is a cache hit: no second KMS Decrypt', async () => {
    const ciphertext = await sealed('alias/archive');
    // As if written elsewhere: drop the copy encrypt offered to the decrypt cache.
    t.service.caches.decrypt.clear();
    const before = t.kmsCalls.Decrypt ?? 0;
    const first = await decrypt(t.service.operations, await t.caller('token-billing'), { ciphertext, expectedContext: undefined, aad: undefined });
    const second = await decrypt(t.service.operations, await t.caller('token-billing'), { ciphertext, expectedContext: undefined, aad: undefined });
    if (!first.ok) throw first.error;
    if (!second.ok) throw second.error;
    expect(first.facts.dataKey?.cacheHit).toBe(false);
    expect(second.facts.dataKey?.cacheHit).toBe(true);
    expect(second.facts.dataKey?.dataKeyId).toBe(first.facts.dataKey?.dataKeyId);
    expect((t.kmsCalls.Decrypt ?? 0) - before).toBe(1);
  });

  it('a context that differs from the stored one: ContextMismatch, nothing decrypted, the stored context in the facts', async () => {
    const ciphertext = await sealed('alias/default');
    const outcome = await decrypt(t.service.operations, await t.caller('token-billing'), { ciphertext, expectedContext: { tenant: 'acme', extra: 'x' }, aad: undefined });
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.error).toMatchObject({ name: 'EnvelopeError', code: 'ContextMismatch' });
    // Authorized on the stored context (the rule matched), then refused on the caller's claim.
    expect(outcome.facts.requestParameters.encryptionContext).toEqual(ACME);
    expect(outcome.facts.ruleId).toBe('billing-data');
    expect(outcome.facts.responseElements).toBeUndefined();
    expect(outcome.facts.dataKey).toBeUndefined();
  });

  it('denied: a caller no rule allows learns nothing, the facts say who was refused on which key', async () => {
    const ciphertext = await sealed('alias/default');
    const outcome = await decrypt(t.service.operations, await t.caller('token-stranger'), { ciphertext, expectedContext: undefined, aad: undefined });
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.error).toMatchObject({ status: 403, code: 'AccessDenied' });
    expect(outcome.facts.denyReason).toContain('"stranger"');
    expect(outcome.facts.requestParameters).toMatchObject({ keyId: defaultArn, encryptionContext: ACME });
  });
});

describe('rewrap, datakey, keys', () => {
  it('rewrap moves a ciphertext to another key the caller may use; the result opens with the same plaintext', async () => {
    const sealedOutcome = await encrypt(t.service.operations, await t.caller('token-billing'), { plaintext: plaintext(), keyId: 'alias/default', context: ACME, aad: undefined });
    if (!sealedOutcome.ok) throw sealedOutcome.error;
    const outcome = await rewrap(t.service.operations, await t.caller('token-billing'), { ciphertext: sealedOutcome.value.ciphertext, keyId: 'alias/archive', expectedContext: ACME });
    if (!outcome.ok) throw outcome.error;
    expect(outcome.value.keyArn).toBe(archiveArn);
    expect(outcome.facts).toMatchObject({
      requestParameters: { keyId: defaultArn, destinationKeyId: 'alias/archive', encryptionContext: ACME },
      ruleId: 'billing-data',
      responseElements: { keyId: archiveArn },
    });
    const opened = await decrypt(t.service.operations, await t.caller('token-billing'), { ciphertext: outcome.value.ciphertext, expectedContext: ACME, aad: undefined });
    if (!opened.ok) throw opened.error;
    expect(opened.value.keyArn).toBe(archiveArn);
    expect(opened.value.plaintext.equals(HELLO)).toBe(true);
  });

  it('datakey without the plaintext grant: the wrapped key only; asking for the plaintext is denied', async () => {
    const wrapped = await issueDataKey(t.service.operations, await t.caller('token-billing'), { keyId: undefined, context: ACME, includePlaintext: false });
    if (!wrapped.ok) throw wrapped.error;
    expect(wrapped.value.keyArn).toBe(defaultArn);
    expect(wrapped.value.wrappedKey.length).toBeGreaterThan(0);
    expect(wrapped.value.plaintextKey).toBeUndefined();
    expect(wrapped.facts).toMatchObject({ requestParameters: { includePlaintext: false }, ruleId: 'billing-data', responseElements: { wrappedKeyBytes: wrapped.value.wrappedKey.length } });

    const plain = await issueDataKey(t.service.operations, await t.caller('token-billing'), { keyId: undefined, context: ACME, includePlaintext: true });
    expect(plain.ok).toBe(false);
    if (plain.ok) return;
    expect(plain.error).toBeInstanceOf(AccessDeniedError);
    expect(plain.facts.denyReason).toContain('datakey:plaintext');
  });

  it('keys lists exactly the keys the caller holds a grant on, with its operations; a caller with no grant gets none', async () => {
    const listed = await listKeys(t.service.operations, await t.caller('token-billing'));
    if (!listed.ok) throw listed.error;
    expect(listed.value.map((key) => key.aliases)).toEqual([['alias/archive'], ['alias/default']]);
    expect(listed.value[0]).toMatchObject({ keyId: archiveArn, operations: expect.arrayContaining(['encrypt', 'decrypt', 'rewrap', 'datakey']) });
    expect(listed.facts.responseElements).toEqual({ keyCount: 2 });

    const none = await listKeys(t.service.operations, await t.caller('token-stranger'));
    if (!none.ok) throw none.error;
    expect(none.value).toEqual([]);
    expect(none.facts.responseElements).toEqual({ keyCount: 0 });
  });
});
