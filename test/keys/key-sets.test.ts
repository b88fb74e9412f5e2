/**
 * Key sets on the embedded provider (two keys of one keystore): the KEY_SETS_FILE checks, the
 * policy on `keyset/NAME`, and the key commitment binding every wrapped key of a set to the
 * one data key: a wrapped key swapped in from another ciphertext, or one made for another data
 * key, is rejected. The two-region behaviour is test/kms/key-sets-regions.test.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kmsEndpointFor, loadConfig } from '../../src/config.js';
import { encodeRewrapped, parseCiphertext, toCiphertextString } from '../../src/format/format.js';
import { KeySets, KeySetsError } from '../../src/keys/key-sets.js';
import { LocalKeyProvider } from '../../src/kms/local.js';
import { preferredOrder } from '../../src/operations/key-set-unwrap.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';

describe('KEY_SETS_FILE', () => {
  const ARN_A = 'arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd';
  const ARN_B = 'arn:aws:kms:eu-central-1:111122223333:key/mrk-1234abcd';

  it('accepts sets of key ARNs in several regions, generator first', () => {
    const sets = KeySets.fromText(`keySets:\n  payments:\n    keys: [${ARN_A}, ${ARN_B}]\n    generator: ${ARN_B}\n    onGeneratorDown: next\n`);
    expect(sets.get('payments')).toMatchObject({ keys: [ARN_B, ARN_A], generator: ARN_B, onGeneratorDown: 'next' });
    expect([...sets.current.regions].sort()).toEqual(['eu-central-1', 'eu-west-1']);
    // onGeneratorDown defaults to fail
    expect(KeySets.fromText(`keySets:\n  p:\n    keys: [${ARN_A}]\n    generator: ${ARN_A}\n`).get('p')?.onGeneratorDown).toBe('fail');
  });

  it('reports every problem with its line and column', () => {
    const text = [
      'keySets:',
      '  payments:',
      `    keys: [${ARN_A}, alias/payments]`,
      '    generator: arn:aws:kms:eu-west-1:111122223333:key/other',
      '    onGeneratorDown: retry',
      '    extra: 1',
      '  "bad name!":',
      `    keys: [${ARN_A}]`,
      `    generator: ${ARN_A}`,
      '',
    ].join('\n');
    let error: KeySetsError | undefined;
    try {
      KeySets.fromText(text, 'sets.yaml');
    } catch (caught) {
      error = caught as KeySetsError;
    }
    expect(error).toBeInstanceOf(KeySetsError);
    const lines = error!.message;
    expect(lines).toContain('sets.yaml:3:');
    expect(lines).toMatch(/keySets\.payments\.keys\[1\]: expected a KMS key ARN/);
    expect(lines).toMatch(/sets\.yaml:4:\d+: keySets\.payments\.generator: generator must be one of the set's keys/);
    expect(lines).toMatch(/sets\.yaml:5:\d+: keySets\.payments\.onGeneratorDown/);
    expect(lines).toMatch(/sets\.yaml:6:\d+: keySets\.payments\.extra: unknown field "extra"/);
    expect(lines).toMatch(/sets\.yaml:7:\d+: .*a set name is/);
  });

  it('reload swaps in a valid file and keeps the sets in force when the new file is invalid', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'key-sets-reload-'));
    const file = join(dir, 'sets.yaml');
    writeFileSync(file, `keySets:\n  p:\n    keys: [${ARN_A}]\n    generator: ${ARN_A}\n`);
    const sets = await KeySets.fromFile(file);
    writeFileSync(file, `keySets:\n  p:\n    keys: [${ARN_A}]\n    generator: ${ARN_B}\n`);
    const refused = await sets.reload();
    expect(refused.ok).toBe(false);
    expect(!refused.ok && refused.error).toMatch(/sets\.yaml:4:\d+: keySets\.p\.generator/);
    expect(sets.get('p')?.generator).toBe(ARN_A);
    writeFileSync(file, `keySets:\n  p:\n    keys: [${ARN_A}, ${ARN_B}]\n    generator: ${ARN_B}\n`);
    expect(await sets.reload()).toEqual({ ok: true, changed: true });
    expect(sets.get('p')?.keys).toEqual([ARN_B, ARN_A]);
    await expect(KeySets.fromFile(join(dir, 'missing.yaml'))).rejects.toThrow(KeySetsError);
  });

  it('KMS_ENDPOINT_<REGION> names a region its own endpoint, else KMS_ENDPOINT, else AWS', () => {
    const config = loadConfig({ KMS_ENDPOINT: 'http://127.0.0.1:1', KMS_ENDPOINT_EU_WEST_1: 'http://127.0.0.1:2' });
    expect(kmsEndpointFor(config, 'eu-west-1')).toBe('http://127.0.0.1:2');
    expect(kmsEndpointFor(config, 'us-east-1')).toBe('http://127.0.0.1:1');
    expect(kmsEndpointFor(loadConfig({}), 'us-east-1')).toBeUndefined();
    expect(() => loadConfig({ KMS_ENDPOINT_EU_WEST_1: 'not a url' })).toThrow(/KMS_ENDPOINT_EU_WEST_1/);
    expect(loadConfig({ KMS_LOCAL_REGION: 'eu-central-1,eu-west-1' }).KMS_LOCAL_REGION).toBe('eu-central-1,eu-west-1');
    expect(() => loadConfig({ KMS_LOCAL_REGION: 'eu central' })).toThrow(/KMS_LOCAL_REGION/);
  });

  it('decrypt order: a cached key first, then the preferred regions in order, a region whose breaker is open last', () => {
    const entry = (region: string) => ({ entry: { keyArn: `arn:aws:kms:${region}:111122223333:key/k`, wrappedKey: Buffer.from(region) }, ruleId: 'r' });
    const regionOf = (arn: string) => arn.split(':')[3]!;
    const deps = (cached: string[], down: string[]) => ({
      regions: { regionOf, isDown: (arn: string) => down.includes(regionOf(arn)) },
      regionOrder: ['eu-central-1', 'eu-west-1'],
      envelope: { holdsKeyFor: (candidate: { keyArn: string }) => cached.includes(regionOf(candidate.keyArn)) },
    }) as unknown as Parameters<typeof preferredOrder>[0];
    const usable = ['us-east-1', 'eu-west-1', 'ap-south-1', 'eu-central-1'].map(entry);
    const order = (cached: string[], down: string[]) => preferredOrder(deps(cached, down), usable, {}).map(({ entry: e }) => regionOf(e.keyArn));
    expect(order([], [])).toEqual(['eu-central-1', 'eu-west-1', 'us-east-1', 'ap-south-1']);
    expect(order([], ['eu-central-1'])).toEqual(['eu-west-1', 'us-east-1', 'ap-south-1', 'eu-central-1']);
    expect(order(['ap-south-1'], ['eu-central-1'])).toEqual(['ap-south-1', 'eu-west-1', 'us-east-1', 'eu-central-1']);
  });
});

const TOKENS = { setUser: 'set-user-token-0123456789abcdef', keyTwoReader: 'key-two-reader-0123456789abcdef', outsider: 'outsider-token-0123456789abcdef' };
const sha = (token: string) => createHash('sha256').update(token).digest('hex');
const as = (token: string) => ({ authorization: `Bearer ${token}` });

describe('key sets on the embedded provider', () => {
  let t: TestApp;
  let keystore: LocalKeyProvider;
  let k1: string;
  let k2: string;
  const context = { tenant: 'a' };

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'key-sets-local-'));
    const keystorePath = join(dir, 'keystore.json');
    keystore = new LocalKeyProvider({ path: keystorePath });
    k1 = (await keystore.createKey()).keyArn;
    k2 = (await keystore.createKey()).keyArn;
    writeFileSync(join(dir, 'sets.yaml'), `keySets:\n  duo:\n    keys: [${k1}, ${k2}]\n    generator: ${k1}\n  solo:\n    keys: [${k1}]\n    generator: ${k1}\n`);
    writeFileSync(
      join(dir, 'policy.yaml'),
      [
        'version: 1',
        'authentication:',
        '  apiKeys:',
        `    - { name: set-user, sha256: "${sha(TOKENS.setUser)}" }`,
        `    - { name: key-two-reader, sha256: "${sha(TOKENS.keyTwoReader)}" }`,
        `    - { name: outsider, sha256: "${sha(TOKENS.outsider)}" }`,
        'rules:',
        '  - { id: set-user, principals: [set-user], operations: [encrypt, decrypt, rewrap], keys: [keyset/duo, keyset/solo], context: { required: [tenant] } }',
        `  - { id: key-two-reader, principals: [key-two-reader], operations: [decrypt], keys: ["${k2}"], context: { required: [tenant] } }`,
        '  - { id: outsider, principals: [outsider], operations: [encrypt, decrypt], keys: [alias/default], context: { allowOthers: true } }',
        '',
      ].join('\n'),
    );
    t = await buildTestApp({ policyFile: join(dir, 'policy.yaml'), env: { LOCAL_KEYSTORE: keystorePath, KEY_SETS_FILE: join(dir, 'sets.yaml') } });
  });

  afterAll(async () => {
    await t?.close();
    await keystore?.close();
  });

  const encrypt = async (plaintext: string) => {
    const response = await request(t.app.server)
      .post('/v1/encrypt')
      .set(as(TOKENS.setUser))
      .send({ plaintext: Buffer.from(plaintext).toString('base64'), keyId: 'keyset/duo', context });
    expect(response.status).toBe(200);
    return response.body.ciphertext as string;
  };
  const decrypt = (ciphertext: string, token = TOKENS.setUser) => {
    t.service.envelope.clear();
    return request(t.app.server).post('/v1/decrypt').set(as(token)).send({ ciphertext, context });
  };

  it('the policy matches sets by name; a key of the set granted by ARN opens it too; others get 403', async () => {
    const ciphertext = await encrypt('policy');
    expect(parseCiphertext(ciphertext).wrappedKeys.map((entry) => entry.keyArn)).toEqual([k1, k2]);
    expect((await decrypt(ciphertext)).status).toBe(200);
    const viaKeyTwo = await decrypt(ciphertext, TOKENS.keyTwoReader);
    expect(viaKeyTwo.status).toBe(200);
    const event = t.auditEvents().at(-1) as { additionalEventData: { keySet: { answeredBy: { keyArn: string } } } };
    expect(event.additionalEventData.keySet.answeredBy.keyArn).toBe(k2);
    expect((await decrypt(ciphertext, TOKENS.outsider)).status).toBe(403);
    const encryptByOutsider = await request(t.app.server).post('/v1/encrypt').set(as(TOKENS.outsider)).send({ plaintext: 'aGk=', keyId: 'keyset/duo' });
    expect(encryptByOutsider.status).toBe(403);
    const listed = await request(t.app.server).get('/v1/keys').set(as(TOKENS.setUser));
    expect(listed.status).toBe(200);
    const sets = (listed.body as { keys?: { keyId: string; operations: string[] }[] }).keys ?? (listed.body as { keyId: string; operations: string[] }[]);
    expect(sets.find((key) => key.keyId === 'keyset/duo')?.operations.sort()).toEqual(['decrypt', 'encrypt', 'rewrap']);
    // POST /v1/datakey issues a key under one KMS key: a set is a clear 400 (after the policy).
    const dataKey = await request(t.app.server).post('/v1/datakey').set(as(TOKENS.outsider)).send({ keyId: 'keyset/duo' });
    expect(dataKey.status).toBe(403);
    // 404 only for a caller the policy allows on the name.
    const unknown = await request(t.app.server).post('/v1/encrypt').set(as(TOKENS.outsider)).send({ plaintext: 'aGk=', keyId: 'keyset/nothing' });
    expect(unknown.status).toBe(403);
  });

  it('a block renamed to another set grants nothing: the set grant covers only the configured set\'s keys', async () => {
    const parsed = parseCiphertext(await encrypt('renamed'));
    const renamed = toCiphertextString(encodeRewrapped({ keySet: 'elsewhere', wrappedKeys: parsed.wrappedKeys }, parsed.sealedPart));
    expect((await decrypt(renamed)).status).toBe(403);
  });

  it('a wrapped key swapped in from another ciphertext of the set is rejected', async () => {
    const one = parseCiphertext(await encrypt('first'));
    const two = parseCiphertext(await encrypt('second'));
    // Two data keys: the cache would otherwise serve both messages with one.
    t.service.envelope.clear();
    const three = parseCiphertext(await encrypt('third'));
    expect(three.wrappedKeys[0]!.wrappedKey.equals(one.wrappedKeys[0]!.wrappedKey)).toBe(false);
    const swapped = toCiphertextString(
      encodeRewrapped({ keySet: 'duo', wrappedKeys: [three.wrappedKeys[0]!, one.wrappedKeys[1]!] }, one.sealedPart),
    );
    const response = await decrypt(swapped);
    expect(response.status).toBe(422);
    expect(response.body.code).toBe('KeyCommitmentMismatch');
    expect(two).toBeDefined();
  });

  it('a wrapped key made for another data key is rejected, even when another key of the set would open the message', async () => {
    const original = parseCiphertext(await encrypt('forged'));
    const other = await keystore.encryptDataKey(randomBytes(32), k1, context);
    const forged = toCiphertextString(
      encodeRewrapped({ keySet: 'duo', wrappedKeys: [{ keyArn: k1, wrappedKey: other.wrappedKey }, original.wrappedKeys[1]!] }, original.sealedPart),
    );
    const response = await decrypt(forged);
    expect(response.status).toBe(422);
    expect(response.body.code).toBe('KeyCommitmentMismatch');
  });

  it('a disabled key of the set passes to the next key', async () => {
    const ciphertext = await encrypt('disabled');
    const service = t.provider as LocalKeyProvider;
    await service.disableKey(k1.split('/').at(-1)!);
    try {
      const response = await decrypt(ciphertext);
      expect(response.status).toBe(200);
      const event = t.auditEvents().at(-1) as { additionalEventData: { keySet: { answeredBy: { keyArn: string }; failedOver: { keyArn: string; error: string }[] } } };
      expect(event.additionalEventData.keySet.answeredBy.keyArn).toBe(k2);
      expect(event.additionalEventData.keySet.failedOver).toEqual([{ keyArn: k1, region: 'local', error: 'KeyDisabled' }]);
    } finally {
      await service.enableKey(k1.split('/').at(-1)!);
    }
  });

  it('rewrap across sets drops and adds keys without touching the payload', async () => {
    const original = parseCiphertext(await encrypt('rewrapped'));
    const rewrap = (ciphertext: string, keyId: string) =>
      request(t.app.server).post('/v1/rewrap').set(as(TOKENS.setUser)).send({ ciphertext, keyId, context });

    const calls = () => t.auditEvents().at(-1) as { additionalEventData: { kmsRequestIds: string[]; keySet: { keys: string[] } } };
    const dropped = await rewrap(toCiphertextString(encodeRewrapped({ keySet: 'duo', wrappedKeys: original.wrappedKeys }, original.sealedPart)), 'keyset/solo');
    expect(dropped.status).toBe(200);
    expect(dropped.body.keyId).toBe('keyset/solo');
    const solo = parseCiphertext(dropped.body.ciphertext);
    expect(solo.keySet).toBe('solo');
    expect(solo.wrappedKeys).toHaveLength(1);
    expect(solo.wrappedKeys[0]!.wrappedKey.equals(original.wrappedKeys[0]!.wrappedKey)).toBe(true);
    expect(solo.sealedPart.equals(original.sealedPart)).toBe(true);
    // Dropping a key needs no KMS call.
    expect(calls().additionalEventData.kmsRequestIds).toEqual([]);

    t.service.envelope.clear();
    const added = await rewrap(dropped.body.ciphertext, 'keyset/duo');
    expect(added.status).toBe(200);
    const duo = parseCiphertext(added.body.ciphertext);
    expect(duo.wrappedKeys.map((entry) => entry.keyArn)).toEqual([k1, k2]);
    expect(duo.wrappedKeys[0]!.wrappedKey.equals(original.wrappedKeys[0]!.wrappedKey)).toBe(true);
    expect(duo.sealedPart.equals(original.sealedPart)).toBe(true);
    expect(calls().additionalEventData.keySet.keys).toEqual([k1, k2]);
    // The new wrapped key is good on its own: a caller that may use only k2 opens it.
    const viaKeyTwo = await decrypt(added.body.ciphertext, TOKENS.keyTwoReader);
    expect(viaKeyTwo.status).toBe(200);
    expect(Buffer.from(viaKeyTwo.body.plaintext, 'base64').toString()).toBe('rewrapped');

    // A wrapped key of another data key is never spread to new keys.
    const foreign = await keystore.encryptDataKey(randomBytes(32), k1, context);
    const forged = toCiphertextString(encodeRewrapped({ keySet: 'solo', wrappedKeys: [{ keyArn: k1, wrappedKey: foreign.wrappedKey }] }, original.sealedPart));
    t.service.envelope.clear();
    const refused = await rewrap(forged, 'keyset/duo');
    expect(refused.status).toBe(422);
    expect(refused.body.code).toBe('KeyCommitmentMismatch');
  });
});

describe('a key set\'s KMS calls and the caller\'s budget', () => {
  it('charges every call of a set\'s data key (GenerateDataKey and each Encrypt), once per data key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'key-sets-budget-'));
    const keystorePath = join(dir, 'keystore.json');
    const keystore = new LocalKeyProvider({ path: keystorePath });
    const keys = [(await keystore.createKey()).keyArn, (await keystore.createKey()).keyArn, (await keystore.createKey()).keyArn];
    await keystore.close();
    writeFileSync(join(dir, 'sets.yaml'), `keySets:\n  trio:\n    keys: [${keys.join(', ')}]\n    generator: ${keys[0]}\n`);
    const frozen = Date.now();
    const t = await buildTestApp({ now: () => frozen, env: { LOCAL_KEYSTORE: keystorePath, KEY_SETS_FILE: join(dir, 'sets.yaml'), KMS_BUDGET_BURST: '50' } });
    try {
      const tokens = () => t.service.budgets.usage().reduce((least, usage) => Math.min(least, usage.tokens), Infinity);
      const encrypt = (purpose: string) =>
        request(t.app.server).post('/v1/encrypt').set({ authorization: 'Bearer dev-token' }).send({ plaintext: 'aGk=', keyId: 'keyset/trio', context: { purpose } });
      expect((await encrypt('warm-up')).status).toBe(200);
      const before = tokens();
      expect((await encrypt('cold')).status).toBe(200);
      expect(before - tokens()).toBe(3);
      expect((await encrypt('cold')).status).toBe(200);
      expect(before - tokens()).toBe(3);
      const dataKey = await request(t.app.server).post('/v1/datakey').set({ authorization: 'Bearer dev-token' }).send({ keyId: 'keyset/trio' });
      expect(dataKey.status).toBe(400);
      expect(dataKey.body.code).toBe('KeySetNotSupported');
    } finally {
      await t.close();
    }
  });
});

