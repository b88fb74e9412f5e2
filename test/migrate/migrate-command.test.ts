/**
 * `envelope migrate` on files made the manual way (local-kms GenerateDataKey through the AWS
 * SDK, the `openssl` command line with each derivation): round trips, each kind of bad file
 * reported for itself while the batch goes on, re-runs that skip what is done, and the outputs
 * opened by the service's stream route.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { KMSClient } from '@aws-sdk/client-kms';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/client/cli/run.js';
import { REPORT_NAME, type ReportLine } from '../../src/client/migrate/report.js';
import { AUTH, buildTestApp, type TestApp } from '../helpers/app.js';
import { LOCAL_KMS_CREDENTIALS, LOCAL_KMS_REGION, LOCAL_KMS_SEED, localKmsEndpoint, skipWithoutLocalKms } from '../helpers/local-kms.js';
import { generateDataKey, noDerivationOpens, opensslFileOnlyOpenedBy, writeKeyFile, type ManualKdf } from './manual-files.js';
import { opensslAvailable, opensslDecrypts, OPENSSL_FLAGS } from './openssl-tool.js';

if (!opensslAvailable() && process.env.CI === 'true') throw new Error('openssl is required in CI');

const KEY_ARN = LOCAL_KMS_SEED.keys.default.keyArn;
const OTHER_KEY_ARN = LOCAL_KMS_SEED.keys.tenantA.keyArn;

const binaryParser = ((res: NodeJS.ReadableStream, callback: (error: Error | null, body: Buffer) => void): void => {
  const chunks: Buffer[] = [];
  res.on('data', (chunk: Buffer) => chunks.push(chunk));
  res.on('end', () => callback(null, Buffer.concat(chunks)));
}) as never;

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.text += chunk.toString();
    callback();
  }
}

describe.skipIf(skipWithoutLocalKms() || !opensslAvailable())('envelope migrate (local-kms, openssl)', () => {
  let kms: KMSClient;
  let app: TestApp;
  let dir: string;

  beforeAll(async () => {
    kms = new KMSClient({ endpoint: localKmsEndpoint(), region: LOCAL_KMS_REGION, credentials: LOCAL_KMS_CREDENTIALS });
    app = await buildTestApp({ provider: 'aws' });
    dir = mkdtempSync(join(tmpdir(), 'migrate-test-'));
  });
  afterAll(async () => {
    await app?.close();
    kms?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const migrate = async (args: string[]) => {
    const stdout = new Capture();
    const stderr = new Capture();
    const env = { AWS_ACCESS_KEY_ID: LOCAL_KMS_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: LOCAL_KMS_CREDENTIALS.secretAccessKey };
    const direct = ['--kms-direct', '--kms-endpoint', localKmsEndpoint() as string, '--region', LOCAL_KMS_REGION];
    const code = await run(['migrate', ...direct, ...args], { stdin: Readable.from([]), stdout, stderr, env });
    return { code, stdout: stdout.text, stderr: stderr.text };
  };
  const reportLines = (outDir: string): ReportLine[] =>
    readFileSync(join(outDir, REPORT_NAME), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as ReportLine);
  const decryptThroughService = async (ciphertext: Buffer): Promise<Buffer> => {
    const response = await request(app.app.server).post('/v1/decrypt/stream').set(AUTH).set('content-type', 'application/octet-stream').buffer(true).parse(binaryParser).send(ciphertext);
    expect(response.status).toBe(200);
    return response.body as Buffer;
  };

  /** One pair made the manual way; returns its paths and plaintext. */
  const manualPair = async (name: string, kdf: ManualKdf, size: number, keyForm: 'raw' | 'base64' | 'json' = 'raw') => {
    const plaintext = randomBytes(size);
    const plainPath = join(dir, `${name}.plain`);
    writeFileSync(plainPath, plaintext);
    const { blob, password } = await generateDataKey(kms, KEY_ARN);
    const keyFile = join(dir, `${name}.key`);
    writeKeyFile(keyFile, blob, keyForm);
    const file = opensslFileOnlyOpenedBy(dir, `${name}.enc`, plainPath, password, kdf);
    return { plaintext, file, keyFile, password, blob };
  };

  it('migrates one pair of each derivation and key file form; the service decrypts the result', async () => {
    const cases: [ManualKdf, 'raw' | 'base64' | 'json', number][] = [
      ['md5', 'raw', 0],
      ['sha256', 'base64', 64 * 1024 + 1],
      ['pbkdf2', 'json', 200_003],
    ];
    const outDir = join(dir, 'single');
    for (const [kdf, form, size] of cases) {
      const pair = await manualPair(`single-${kdf}`, kdf, size, form);
      const result = await migrate(['--key-id', OTHER_KEY_ARN, '--source-key-id', KEY_ARN, '--context', 'app=billing', '--out-dir', outDir, '--wrapped-key', pair.keyFile, pair.file]);
      expect(result.stdout).toContain('migrated 1, skipped as done 0, failed 0');
      expect(result.code).toBe(0);
      const output = join(outDir, `single-${kdf}.enc.env`);
      const sealed = readFileSync(output);
      expect((await decryptThroughService(sealed)).equals(pair.plaintext)).toBe(true);
      const line = reportLines(outDir).find((entry) => entry.output === output);
      expect(line).toMatchObject({ status: 'migrated', bytes: size, keyArn: OTHER_KEY_ARN });
      expect(line?.kdf).toContain(kdf);
      // The source is untouched; the output is the owner's alone.
      expect(existsSync(pair.file)).toBe(true);
      expect(statSync(output).mode & 0o077).toBe(0);
    }
    expect(readdirSync(outDir).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('a manifest batch: bad files are reported one by one, the rest migrate, a re-run skips what is done', async () => {
    const batch = join(dir, 'batch');
    const good = await Promise.all([manualPair('b-md5', 'md5', 5000), manualPair('b-sha', 'sha256', 70_000), manualPair('b-pb', 'pbkdf2', 1)]);

    // A wrong key file: another file's (valid) wrapped key, drawn so that no derivation's
    // padding fits by chance (which CBC cannot rule out: docs/MIGRATION.md).
    const swapped = await manualPair('b-swapped', 'sha256', 3000);
    let wrong = await generateDataKey(kms, KEY_ARN);
    while (!noDerivationOpens(dir, swapped.file, wrong.password)) wrong = await generateDataKey(kms, KEY_ARN);
    writeKeyFile(swapped.keyFile, wrong.blob, 'raw');

    // A key file KMS refuses.
    const garbageKey = await manualPair('b-garbage-key', 'md5', 100);
    writeFileSync(garbageKey.keyFile, randomBytes(180));

    // A corrupted last block: a byte value openssl itself then refuses.
    const corrupted = await manualPair('b-corrupt', 'pbkdf2', 4000);
    const bytes = readFileSync(corrupted.file);
    const original = bytes[bytes.length - 1] as number;
    for (let flip = 1; flip < 256; flip++) {
      bytes[bytes.length - 1] = original ^ flip;
      writeFileSync(corrupted.file, bytes);
      if (noDerivationOpens(dir, corrupted.file, corrupted.password)) break;
    }

    // A truncated file.
    const truncated = await manualPair('b-truncated', 'md5', 9000);
    writeFileSync(truncated.file, readFileSync(truncated.file).subarray(0, 4000 + 5));

    const all = [...good, swapped, garbageKey, corrupted, truncated];
    const manifest = join(dir, 'manifest.csv');
    writeFileSync(manifest, `wrapped_key,file,team\n${all.map((pair, i) => `${pair.keyFile},${pair.file},team-${i}`).join('\n')}\n`);

    const first = await migrate(['--key-id', KEY_ARN, '--context', 'team={team}', '--out-dir', batch, '--manifest', manifest]);
    expect(first.code).toBe(1);
    expect(first.stdout).toContain('migrated 3, skipped as done 0, failed 4');
    const byFile = new Map(reportLines(batch).map((line) => [line.source, line]));
    for (const [i, pair] of good.entries()) {
      const line = byFile.get(pair.file);
      expect(line?.status).toBe('migrated');
      const sealed = readFileSync(line?.output as string);
      expect((await decryptThroughService(sealed)).equals(pair.plaintext)).toBe(true);
      // The context took the row's column.
      const header = await request(app.app.server).post('/v1/decrypt/stream').set(AUTH).set('x-envelope-context', `team=team-${i}`).set('content-type', 'application/octet-stream').send(sealed);
      expect(header.status).toBe(200);
    }
    expect(byFile.get(swapped.file)).toMatchObject({ status: 'failed', code: 'NoDerivationFits' });
    expect(byFile.get(garbageKey.file)).toMatchObject({ status: 'failed' });
    expect(byFile.get(garbageKey.file)?.reason).toMatch(/KMS Decrypt/);
    expect(byFile.get(corrupted.file)).toMatchObject({ status: 'failed', code: 'NoDerivationFits' });
    expect(byFile.get(truncated.file)).toMatchObject({ status: 'failed', code: 'Truncated' });
    for (const bad of [swapped, garbageKey, corrupted, truncated]) expect(existsSync(byFile.get(bad.file)?.output as string)).toBe(false);
    expect(readdirSync(batch).filter((name) => name.endsWith('.tmp'))).toEqual([]);

    // Fix one bad pair, then run again: done ones are skipped, the fixed one migrates.
    writeKeyFile(swapped.keyFile, swapped.blob, 'raw');
    const outputs = good.map((pair) => readFileSync(byFile.get(pair.file)?.output as string));
    const second = await migrate(['--key-id', KEY_ARN, '--context', 'team={team}', '--out-dir', batch, '--manifest', manifest]);
    expect(second.stdout).toContain('migrated 1, skipped as done 3, failed 3');
    expect(second.code).toBe(1);
    good.forEach((pair, i) => expect(readFileSync(byFile.get(pair.file)?.output as string).equals(outputs[i] as Buffer)).toBe(true));
    const swappedOut = readFileSync(join(batch, 'b-swapped.enc.env'));
    expect((await decryptThroughService(swappedOut)).equals(swapped.plaintext)).toBe(true);
  });

  it('never overwrites: an existing output fails that file, two sources of one name fail the second', async () => {
    const outDir = join(dir, 'collide');
    const a = await manualPair('same', 'sha256', 10);
    const otherDir = mkdtempSync(join(dir, 'other-'));
    const plainB = join(otherDir, 'plain');
    writeFileSync(plainB, 'b');
    const b = { keyFile: a.keyFile, file: opensslFileOnlyOpenedBy(otherDir, 'same.enc', plainB, a.password, 'sha256') };
    const manifest = join(dir, 'collide.jsonl');
    writeFileSync(manifest, `${JSON.stringify({ wrapped_key: a.keyFile, file: a.file })}\n${JSON.stringify({ wrapped_key: b.keyFile, file: b.file })}\n`);
    const result = await migrate(['--key-id', KEY_ARN, '--out-dir', outDir, '--manifest', manifest]);
    expect(result.stdout).toContain('migrated 1, skipped as done 0, failed 1');
    expect(result.stdout).toContain('OutputCollision');

    const taken = join(dir, 'taken');
    const c = await manualPair('taken', 'md5', 10);
    rmSync(taken, { recursive: true, force: true });
    const existing = join(taken, 'taken.enc.env');
    await migrate(['--key-id', KEY_ARN, '--out-dir', taken, '--wrapped-key', c.keyFile, join(dir, 'missing.enc')]); // creates the dir, fails
    writeFileSync(existing, 'not ours');
    const again = await migrate(['--key-id', KEY_ARN, '--out-dir', taken, '--wrapped-key', c.keyFile, c.file]);
    expect(again.code).toBe(1);
    expect(again.stdout).toContain('OutputExists');
    expect(readFileSync(existing, 'utf8')).toBe('not ours');
  });

  it('a middle-of-file corruption cannot be detected (CBC has no integrity): the output holds what openssl itself decrypts', async () => {
    const outDir = join(dir, 'middle');
    const pair = await manualPair('middle', 'sha256', 10_000);
    const bytes = readFileSync(pair.file);
    bytes[16 + 4000] = (bytes[16 + 4000] as number) ^ 0xff;
    writeFileSync(pair.file, bytes);
    const opensslOut = join(dir, 'middle.openssl-out');
    expect(opensslDecrypts(pair.file, opensslOut, pair.password, OPENSSL_FLAGS.sha256)).toBe(true);
    const result = await migrate(['--key-id', KEY_ARN, '--kdf', 'sha256', '--out-dir', outDir, '--wrapped-key', pair.keyFile, pair.file]);
    expect(result.code).toBe(0);
    const migrated = await decryptThroughService(readFileSync(join(outDir, 'middle.enc.env')));
    expect(migrated.equals(readFileSync(opensslOut))).toBe(true);
    expect(migrated.equals(pair.plaintext)).toBe(false);
  });

  it('usage errors exit 2 with the usage', async () => {
    const result = await migrate(['--out-dir', join(dir, 'usage'), '--manifest', 'm.csv']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--key-id is required');
    const both = await migrate(['--key-id', KEY_ARN, '--out-dir', join(dir, 'usage'), '--manifest', 'm.csv', '--wrapped-key', 'k', 'f']);
    expect(both.code).toBe(2);
    const kdf = await migrate(['--key-id', KEY_ARN, '--out-dir', join(dir, 'usage'), '--kdf', 'sha1', '--wrapped-key', 'k', 'f']);
    expect(kdf.stderr).toContain('--kdf must be one of');
  });
});
