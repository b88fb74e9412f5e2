/**
 * Key sets across two regions: two local-kms processes play eu-west-2 (account 111122223333)
 * and us-east-1 (account 444455556666), each with its own client, breaker and stats in the
 * service. A ciphertext written under a set opens through either region while the other is
 * stopped, both stopped is a fast 503 with Retry-After, and the generator's region stopped does
 * what the set's onGeneratorDown says. JSON and stream routes.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCiphertext } from '../../src/format/format.js';
import { parseStreamHeader } from '../../src/format/stream-format.js';
import { AwsKmsProvider } from '../../src/kms/aws.js';
import { AUTH, buildTestApp, type TestApp } from '../helpers/app.js';
import { LOCAL_KMS_SEED, findLocalKmsBinary, localKmsSettings, startLocalKms, type LocalKmsInstance } from '../helpers/local-kms.js';

const REGION_A = 'eu-west-2';
const ACCOUNT_A = '111122223333';
const REGION_B = 'us-east-1';
const ACCOUNT_B = '444455556666';
const KEY_A = `arn:aws:kms:${REGION_A}:${ACCOUNT_A}:key/${LOCAL_KMS_SEED.keys.default.keyId}`;
const KEY_B = `arn:aws:kms:${REGION_B}:${ACCOUNT_B}:key/${LOCAL_KMS_SEED.keys.tenantA.keyId}`;

const skip = !findLocalKmsBinary() && process.env.CI !== 'true';

describe.skipIf(skip)('key sets across two local-kms regions', () => {
  let a: LocalKmsInstance;
  let b: LocalKmsInstance;
  let t: TestApp;

  beforeAll(async () => {
    [a, b] = await Promise.all([
      startLocalKms({ region: REGION_A, accountId: ACCOUNT_A }),
      startLocalKms({ region: REGION_B, accountId: ACCOUNT_B }),
    ]);
    const dir = (await import('node:fs')).mkdtempSync(join((await import('node:os')).tmpdir(), 'key-sets-'));
    const file = join(dir, 'key-sets.yaml');
    writeFileSync(
      file,
      [
        'keySets:',
        '  pair:',
        `    keys: [${KEY_A}, ${KEY_B}]`,
        `    generator: ${KEY_A}`,
        '    onGeneratorDown: fail',
        '  pair-next:',
        `    keys: [${KEY_A}, ${KEY_B}]`,
        `    generator: ${KEY_A}`,
        '    onGeneratorDown: next',
        '',
      ].join('\n'),
    );
    t = await buildTestApp({
      provider: 'aws',
      endpoint: a.endpoint,
      env: { KEY_SETS_FILE: file, KMS_BREAKER_FAILURES: '1', KMS_BREAKER_COOLDOWN_MS: '300', AWS_REGION: REGION_A },
      kmsSettings: { KMS_MAX_ATTEMPTS: 1, KMS_TIMEOUT_MS: 3_000 },
      providerFor: (region) => {
        expect(region).toBe(REGION_B);
        return new AwsKmsProvider({ settings: localKmsSettings(b.endpoint, { AWS_REGION: REGION_B, KMS_MAX_ATTEMPTS: 1, KMS_TIMEOUT_MS: 3_000 }) });
      },
    });
  }, 120_000);

  afterAll(async () => {
    await t?.close();
    await Promise.all([a?.dispose(), b?.dispose()]);
  });

  let writtenDuringOutage = '';

  /** Drops every cached data key, so the next decrypt must ask KMS. */
  const forget = () => t.service.envelope.clear();

  const encrypt = (keyId: string, plaintext = 'hello sets') =>
    request(t.app.server).post('/v1/encrypt').set(AUTH).send({ plaintext: Buffer.from(plaintext).toString('base64'), keyId, context: { tenant: 'a' } });
  const decrypt = (ciphertext: string) => request(t.app.server).post('/v1/decrypt').set(AUTH).send({ ciphertext, context: { tenant: 'a' } });
  const lastEvent = () => t.auditEvents().at(-1) as { additionalEventData: { keySet?: Record<string, unknown>; kmsRequestIds: string[] } };

  /** Decrypts until it succeeds: a breaker opened by an earlier step lets a probe through after its cooldown. */
  async function decryptEventually(ciphertext: string) {
    for (let attempt = 0; ; attempt++) {
      forget();
      const response = await decrypt(ciphertext);
      if (response.status === 200 || attempt >= 40) return response;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it('encrypts under both regions and decrypts through either while the other is down', async () => {
    const encrypted = await encrypt('keyset/pair');
    expect(encrypted.status).toBe(200);
    expect(encrypted.body.keyId).toBe('keyset/pair');
    const parsed = parseCiphertext(encrypted.body.ciphertext);
    expect(parsed.keySet).toBe('pair');
    expect(parsed.wrappedKeys.map((entry) => entry.keyArn)).toEqual([KEY_A, KEY_B]);
    const written = lastEvent().additionalEventData.keySet!;
    expect(written).toMatchObject({ name: 'pair', keys: [KEY_A, KEY_B], answeredBy: { keyArn: KEY_A, region: REGION_A } });

    forget();
    const both = await decrypt(encrypted.body.ciphertext);
    expect(both.status).toBe(200);
    expect(Buffer.from(both.body.plaintext, 'base64').toString()).toBe('hello sets');
    expect(lastEvent().additionalEventData.keySet).toMatchObject({ answeredBy: { region: REGION_A } });

    await a.stop();
    const viaB = await decryptEventually(encrypted.body.ciphertext);
    expect(viaB.status).toBe(200);
    expect(Buffer.from(viaB.body.plaintext, 'base64').toString()).toBe('hello sets');
    expect(lastEvent().additionalEventData.keySet).toMatchObject({ answeredBy: { keyArn: KEY_B, region: REGION_B } });

    await a.restart();
    await b.stop();
    const viaA = await decryptEventually(encrypted.body.ciphertext);
    expect(viaA.status).toBe(200);
    expect(lastEvent().additionalEventData.keySet).toMatchObject({ answeredBy: { keyArn: KEY_A, region: REGION_A } });

    await a.stop();
    forget();
    await decrypt(encrypted.body.ciphertext); // opens both breakers
    forget();
    const started = Date.now();
    const none = await decrypt(encrypted.body.ciphertext);
    expect(none.status).toBe(503);
    expect(none.body.code).toBe('KmsUnavailable');
    expect(Number(none.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // Both breakers open: answered without waiting on either region's timeouts.
    expect(Date.now() - started).toBeLessThan(3_000);

    const admin = await request(t.app.server).get('/v1/admin/kms').set(AUTH);
    expect(admin.status).toBe(200);
    const regions = admin.body.regions as { region: string; breaker: { state: string } }[];
    expect(regions.map((region) => region.region).sort()).toEqual([REGION_A, REGION_B].sort());

    await Promise.all([a.restart(), b.restart()]);
  }, 120_000);

  it('generator region down: onGeneratorDown fail answers 503, next generates in the other region', async () => {
    await a.stop();
    try {
      let failed = await encrypt('keyset/pair', 'fail mode');
      // The first call finds the region down and opens its breaker; either way a 503.
      expect(failed.status).toBe(503);
      failed = await encrypt('keyset/pair', 'fail mode');
      expect(failed.status).toBe(503);
      expect(failed.headers['retry-after']).toBeDefined();

      // Region B's client may first meet a socket its restart cut (one failed call, its breaker
      // opening for a cooldown): wait until it answers.
      let next = await encrypt('keyset/pair-next', 'next mode');
      for (let attempt = 0; next.status !== 200 && attempt < 40; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        next = await encrypt('keyset/pair-next', 'next mode');
      }
      expect(next.status).toBe(200);
      const parsed = parseCiphertext(next.body.ciphertext);
      writtenDuringOutage = next.body.ciphertext;
      expect(parsed.wrappedKeys.map((entry) => entry.keyArn)).toEqual([KEY_B]);
      expect(lastEvent().additionalEventData.keySet).toMatchObject({
        name: 'pair-next',
        keys: [KEY_B],
        missingKeys: [KEY_A],
        answeredBy: { keyArn: KEY_B, region: REGION_B },
      });
      forget();
      const opened = await decrypt(next.body.ciphertext);
      expect(opened.status).toBe(200);
      expect(Buffer.from(opened.body.plaintext, 'base64').toString()).toBe('next mode');
      const metrics = await t.metrics.scrape();
      expect(metrics).toMatch(/keyset_data_keys_total\{key_set="pair-next",region="us-east-1",complete="false"\} 1/);
    } finally {
      await a.restart();
    }
  }, 120_000);

  it('rewrap to the set adds the region a ciphertext written during an outage lacks, payload untouched', async () => {
    expect(writtenDuringOutage).not.toBe('');
    let rewrapped;
    for (let attempt = 0; attempt < 40; attempt++) {
      forget();
      rewrapped = await request(t.app.server).post('/v1/rewrap').set(AUTH).send({ ciphertext: writtenDuringOutage, keyId: 'keyset/pair-next' });
      if (rewrapped.status === 200) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(rewrapped!.status).toBe(200);
    const before = parseCiphertext(writtenDuringOutage);
    const after = parseCiphertext(rewrapped!.body.ciphertext);
    expect(after.wrappedKeys.map((entry) => entry.keyArn)).toEqual([KEY_A, KEY_B]);
    expect(after.sealedPart.equals(before.sealedPart)).toBe(true);
    await b.stop();
    try {
      const viaA = await decryptEventually(rewrapped!.body.ciphertext);
      expect(viaA.status).toBe(200);
      expect(Buffer.from(viaA.body.plaintext, 'base64').toString()).toBe('next mode');
      expect(lastEvent().additionalEventData.keySet).toMatchObject({ answeredBy: { keyArn: KEY_A, region: REGION_A } });
    } finally {
      await b.restart();
    }
  }, 120_000);

  it('streams: written under the set, read through region B while region A is down', async () => {
    // A's breaker may still be open from the last test: wait until an encrypt goes through.
    let encrypted;
    for (let attempt = 0; attempt < 40; attempt++) {
      encrypted = await request(t.app.server)
        .post('/v1/encrypt/stream')
        .set(AUTH)
        .set('content-type', 'application/octet-stream')
        .set('x-envelope-key-id', 'keyset/pair')
        .set('x-envelope-context', 'tenant=a')
        .buffer(true)
        .parse((res, done) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => done(null, Buffer.concat(chunks)));
        })
        .send(Buffer.alloc(200_000, 7));
      if (encrypted.status === 200) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(encrypted!.status).toBe(200);
    const body = encrypted!.body as Buffer;
    const header = parseStreamHeader(body);
    expect(header.keySet).toBe('pair');
    expect(header.wrappedKeys.map((entry) => entry.keyArn)).toEqual([KEY_A, KEY_B]);

    await a.stop();
    try {
      let opened;
      for (let attempt = 0; attempt < 40; attempt++) {
        forget();
        opened = await request(t.app.server)
          .post('/v1/decrypt/stream')
          .set(AUTH)
          .set('content-type', 'application/octet-stream')
          .buffer(true)
          .parse((res, done) => {
            const chunks: Buffer[] = [];
            res.on('data', (chunk: Buffer) => chunks.push(chunk));
            res.on('end', () => done(null, Buffer.concat(chunks)));
          })
          .send(body);
        if (opened.status === 200) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(opened!.status).toBe(200);
      expect((opened!.body as Buffer).equals(Buffer.alloc(200_000, 7))).toBe(true);
      expect(opened!.headers['x-envelope-key-id']).toBe('keyset/pair');
    } finally {
      await a.restart();
    }
  }, 120_000);
});
