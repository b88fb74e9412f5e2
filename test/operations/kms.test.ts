/**
 * The operations on the AWS SDK provider against local-kms (a real KMS API), built through
 * compose: the audit facts carry the KMS request ids, a cached data key is reused
 * without a KMS call, and a caller's wrong context is refused after KMS-backed authorization.
 *
 * The one thing mocked: local-kms sends no x-amzn-RequestId header (real KMS always does), so
 * KMS is reached through test/helpers/fault-proxy.ts with `addRequestIds`, which adds one to
 * each of local-kms's answers and records it: the facts must carry exactly those ids.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decrypt } from '../../src/operations/decrypt.js';
import { encrypt } from '../../src/operations/encrypt.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { localKmsEndpoint, skipWithoutLocalKms } from '../helpers/local-kms.js';
import { buildOperationsFixture, type OperationsFixture } from './helpers.js';

const ACME = { tenant: 'acme' };

describe.skipIf(skipWithoutLocalKms())('operations on local-kms', () => {
  let t: OperationsFixture;
  let kms: FaultProxy;
  beforeAll(async () => {
    kms = await startFaultProxy(localKmsEndpoint()!, { addRequestIds: true });
    t = await buildOperationsFixture('aws', { endpoint: kms.endpoint });
  });
  afterAll(async () => {
    await t?.close();
    await kms?.close();
  });

  it('encrypt, then decrypt: KMS is called once for the key and once for the data key, and the second encrypt reuses the data key', async () => {
    const first = await encrypt(t.service.operations, await t.caller('token-billing'), { plaintext: Buffer.from('hello'), keyId: 'alias/default', context: ACME, aad: undefined });
    if (!first.ok) throw first.error;
    expect(first.value.keyId).toMatch(/^arn:aws:kms:eu-west-2:111122223333:key\//);
    expect(first.facts.ruleId).toBe('billing-data');
    // Resolving alias/default, then GenerateDataKey; the facts carry the request ids KMS gave
    // them, in call order.
    expect(t.kmsCalls).toMatchObject({ DescribeKey: 1, GenerateDataKey: 1 });
    expect(kms.requests.map((request) => request.operation)).toEqual(['DescribeKey', 'GenerateDataKey']);
    expect(first.facts.kmsRequestIds).toEqual(kms.requests.map((request) => request.requestId));
    expect(new Set(first.facts.kmsRequestIds).size).toBe(2);
    const generated = t.kmsCalls.GenerateDataKey;

    const second = await encrypt(t.service.operations, await t.caller('token-billing'), { plaintext: Buffer.from('hello'), keyId: 'alias/default', context: ACME, aad: undefined });
    if (!second.ok) throw second.error;
    expect(second.facts.dataKey).toMatchObject({ cacheHit: true, dataKeyId: first.facts.dataKey?.dataKeyId });
    expect(t.kmsCalls.GenerateDataKey).toBe(generated);

    const opened = await decrypt(t.service.operations, await t.caller('token-billing'), { ciphertext: first.value.ciphertext, expectedContext: ACME, aad: undefined });
    if (!opened.ok) throw opened.error;
    expect(opened.value.plaintext.toString()).toBe('hello');
    expect(opened.facts).toMatchObject({ ruleId: 'billing-data', responseElements: { keyId: first.value.keyId, plaintextBytes: 5 } });
  });

  it('decrypt with a context other than the stored one: ContextMismatch, and KMS never asked to unwrap', async () => {
    const sealed = await encrypt(t.service.operations, await t.caller('token-billing'), { plaintext: Buffer.from('hello'), keyId: 'alias/default', context: ACME, aad: undefined });
    if (!sealed.ok) throw sealed.error;
    const unwraps = t.kmsCalls.Decrypt ?? 0;
    const outcome = await decrypt(t.service.operations, await t.caller('token-billing'), { ciphertext: sealed.value.ciphertext, expectedContext: { tenant: 'globex' }, aad: undefined });
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.error).toMatchObject({ code: 'ContextMismatch' });
    expect(outcome.facts.requestParameters.encryptionContext).toEqual(ACME);
    expect(t.kmsCalls.Decrypt ?? 0).toBe(unwraps);
  });
});
