/**
 * `envelope migrate` through the service (no --kms-direct): the source data keys come from
 * POST /v1/unwrap under `datakey:unwrap`, the new ones from /v1/datakey under
 * `datakey:plaintext`; the policy decides per file and the audit trail has every file's
 * unwrap. The outputs open through the stream route and `envelope decrypt` (both modes). A
 * principal without the grant gets each file failed with the service's 403.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { KMSClient } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/client/cli/run.js';
import { REPORT_NAME, type ReportLine } from '../../src/client/migrate/report.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { LOCAL_KMS_CREDENTIALS, LOCAL_KMS_REGION, LOCAL_KMS_SEED, localKmsEndpoint, skipWithoutLocalKms } from '../helpers/local-kms.js';
import { generateDataKey, opensslFileOnlyOpenedBy, writeKeyFile } from './manual-files.js';
import { opensslAvailable } from './openssl-tool.js';

if (!opensslAvailable() && process.env.CI === 'true') throw new Error('openssl is required in CI');

const SOURCE_KEY = LOCAL_KMS_SEED.keys.default.keyArn;
const TARGET_KEY = LOCAL_KMS_SEED.keys.tenantA.keyArn;
const MIGRATOR = 'migrate-test-migrator-token';
const OUTSIDER = 'migrate-test-outsider-token';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.text += chunk.toString();
    callback();
  }
}

describe.skipIf(skipWithoutLocalKms() || !opensslAvailable())('envelope migrate through the service', () => {
  let kms: KMSClient;
  let t: TestApp;
  let url: string;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'migrate-service-'));
    const policy = join(dir, 'policy.yaml');
    writeFileSync(
      policy,
      [
        'version: 1',
        'authentication:',
        '  apiKeys:',
        `    - { name: migrator, sha256: "${sha256(MIGRATOR)}" }`,
        `    - { name: outsider, sha256: "${sha256(OUTSIDER)}" }`,
        'rules:',
        '  - id: migrator-unwraps-old-keys',
        '    principals: [migrator]',
        '    operations: ["datakey:unwrap"]',
        `    keys: ["${SOURCE_KEY}"]`,
        '  - id: migrator-seals-per-team',
        '    principals: [migrator]',
        '    operations: [datakey, "datakey:plaintext", "datakey:unwrap", decrypt]',
        `    keys: ["${TARGET_KEY}"]`,
        '    context: { required: [team], allowOthers: false }',
        '  - id: outsider-seals-only',
        '    principals: [outsider]',
        '    operations: [datakey, "datakey:plaintext"]',
        '    keys: ["*"]',
        '',
      ].join('\n'),
    );
    t = await buildTestApp({ provider: 'aws', policyFile: policy });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    kms = new KMSClient({ endpoint: localKmsEndpoint(), region: LOCAL_KMS_REGION, credentials: LOCAL_KMS_CREDENTIALS });
  });
  afterAll(async () => {
    await t?.close();
    kms?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const pairs = async (prefix: string, count: number) => {
    const made = [];
    for (let i = 0; i < count; i++) {
      const plaintext = randomBytes(1000 + i * 70_000);
      const plainPath = join(dir, `${prefix}${i}.plain`);
      writeFileSync(plainPath, plaintext);
      const { blob, password } = await generateDataKey(kms, SOURCE_KEY);
      const keyFile = join(dir, `${prefix}${i}.key`);
      writeKeyFile(keyFile, blob, 'base64');
      made.push({ plaintext, keyFile, file: opensslFileOnlyOpenedBy(dir, `${prefix}${i}.enc`, plainPath, password, 'sha256'), team: `team-${i}` });
    }
    const manifest = join(dir, `${prefix}.jsonl`);
    writeFileSync(manifest, made.map((pair) => JSON.stringify({ wrapped_key: pair.keyFile, file: pair.file, team: pair.team })).join('\n'));
    return { made, manifest };
  };
  const command = async (token: string, argv: string[]) => {
    const stdout = new Capture();
    const stderr = new Capture();
    const code = await run(argv, { stdin: Readable.from([]), stdout, stderr, env: { ENVELOPE_URL: url, ENVELOPE_TOKEN: token } });
    return { code, stdout: stdout.text, stderr: stderr.text };
  };
  const migrate = (token: string, args: string[]) => command(token, ['migrate', ...args]);

  it('unwraps every file through /v1/unwrap (audited), seals under the named key and context', async () => {
    const { made, manifest } = await pairs('svc', 3);
    const outDir = join(dir, 'out');
    const result = await migrate(MIGRATOR, ['--key-id', TARGET_KEY, '--source-key-id', SOURCE_KEY, '--context', 'team={team}', '--out-dir', outDir, '--manifest', manifest]);
    expect(result.stdout).toContain('migrated 3, skipped as done 0, failed 0');
    expect(result.code).toBe(0);
    const events = t.auditEvents();
    const unwraps = events.filter((event) => event.eventName === 'UnwrapDataKey' && event.errorCode === undefined);
    expect(unwraps).toHaveLength(3);
    const lines = readFileSync(join(outDir, REPORT_NAME), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as ReportLine);
    for (const pair of made) {
      const line = lines.find((entry) => entry.source === pair.file);
      expect(line).toMatchObject({ status: 'migrated', keyArn: TARGET_KEY, sha256: createHash('sha256').update(pair.plaintext).digest('hex') });
      // The service opens it, under the row's context (the migrator may decrypt that key).
      const response = await fetch(`${url}/v1/decrypt/stream`, {
        method: 'POST',
        headers: { authorization: `Bearer ${MIGRATOR}`, 'content-type': 'application/octet-stream', 'x-envelope-context': `team=${pair.team}` },
        body: readFileSync(line?.output as string),
      });
      expect(response.status).toBe(200);
      expect(Buffer.from(await response.arrayBuffer()).equals(pair.plaintext)).toBe(true);
      // And `envelope decrypt`, opened here (data key from /v1/unwrap) and through the route.
      for (const mode of [[], ['--server-side']]) {
        const target = join(dir, `decrypted-${pair.team}-${mode.length}`);
        const decrypted = await command(MIGRATOR, ['decrypt', ...mode, '--context', `team=${pair.team}`, '-o', target, line?.output as string]);
        expect(decrypted.stderr).toBe('');
        expect(decrypted.code).toBe(0);
        expect(readFileSync(target).equals(pair.plaintext)).toBe(true);
      }
    }
  });

  it('without datakey:unwrap each file fails with the service 403, and nothing is written', async () => {
    const { manifest } = await pairs('outsider', 2);
    const outDir = join(dir, 'out-outsider');
    const result = await migrate(OUTSIDER, ['--key-id', TARGET_KEY, '--source-key-id', SOURCE_KEY, '--context', 'team={team}', '--out-dir', outDir, '--manifest', manifest]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('migrated 0, skipped as done 0, failed 2');
    expect(result.stdout).toMatch(/POST \/v1\/unwrap: 403/);
    expect(result.stdout).toContain('datakey:unwrap');
    const lines = readFileSync(join(outDir, REPORT_NAME), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as ReportLine);
    expect(lines.map((line) => line.status)).toEqual(['failed', 'failed']);
  });

  it('without a token it does not start', async () => {
    const stdout = new Capture();
    const stderr = new Capture();
    const code = await run(['migrate', '--key-id', TARGET_KEY, '--out-dir', join(dir, 'x'), '--wrapped-key', 'k', 'f'], { stdin: Readable.from([]), stdout, stderr, env: { ENVELOPE_URL: url } });
    expect(code).toBe(2);
    expect(stderr.text).toContain('ENVELOPE_TOKEN');
  });
});
