/**
 * docker-compose.yml, checked without a Docker engine: parsed with `yaml`, its envelope
 * environment validated by the service's own loadConfig() (with the image's ENV under it, as
 * the container sees it), every mount backed by a file in the repo, health checks and startup
 * order in place, and finally the service run (tsx) with that exact environment against
 * local-kms for an encrypt/decrypt round trip with the example policy's demo token.
 * scripts/compose-smoke.sh does the same with the built output and scripts/local-kms.sh.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KMSClient } from '@aws-sdk/client-kms';
import { main as verifyAudit } from '../../src/cli/audit-verify.js';
import { PolicyStore } from '../../src/authz/store.js';
import { fetchPublicKeyPem } from '../../src/audit/signer-aws.js';
import { ConfigSchema, loadConfig } from '../../src/config.js';
import { LOCAL_KMS_ACCOUNT_ID, LOCAL_KMS_REGION, LOCAL_KMS_SEED_PATH, localKmsEndpoint, skipWithoutLocalKms } from '../helpers/local-kms.js';
import { json, send, sendRetryingOverload } from './helpers/http.js';
import {
  composeEnvironment,
  composeHealthcheck,
  composeMounts,
  composeServiceLocalEnv,
  dockerBytes,
  durationMs,
  hostPathOf,
  loadCompose,
  type ComposeFile,
  type ComposeService,
} from './helpers/deploy-files.js';
import { imageEnv as dockerfileEnv, imageHealthcheck } from './helpers/dockerfile-facts.js';
import { REPO_ROOT, startService, tempDir, type ServiceProcess } from './helpers/service-process.js';

const CONFIG_NAMES = new Set(Object.keys(ConfigSchema.properties));
/** Read by the AWS SDK's default credential chain, or by node itself, not by the service's config. */
const AWS_CREDENTIAL_NAMES = new Set(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'NODE_OPTIONS']);

let compose: ComposeFile;
let envelope: ComposeService;
let kms: ComposeService;
let env: Record<string, string>;

beforeAll(() => {
  compose = loadCompose();
  envelope = compose.services.envelope!;
  kms = compose.services['local-kms']!;
  env = composeEnvironment(envelope);
});

describe('docker-compose.yml', () => {
  it('has the envelope service and local-kms, and nothing else', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['envelope', 'local-kms']);
    expect(envelope.build).toBe('.');
    expect(existsSync(join(REPO_ROOT, 'Dockerfile'))).toBe(true);
    // Pinned, as the design names it; never a floating tag.
    expect(kms.image).toBe('nsmithuk/local-kms:3.11.7');
  });

  it('gives the service only known configuration names (or AWS SDK credentials), all with values', () => {
    for (const name of Object.keys(env)) {
      expect(CONFIG_NAMES.has(name) || AWS_CREDENTIAL_NAMES.has(name), `${name} is not a configuration name`).toBe(true);
    }
    expect(env).toMatchObject({
      KMS_PROVIDER: 'aws',
      KMS_ENDPOINT: 'http://local-kms:8080',
      AWS_REGION: 'eu-west-2',
      POLICY_FILE: '/etc/envelope/policy.yaml',
      AUDIT_LOG: '/var/log/envelope/audit.log',
    });
    expect(env.AWS_ACCESS_KEY_ID).toBeTruthy();
    expect(env.AWS_SECRET_ACCESS_KEY).toBeTruthy();
  });

  it('its environment, over the image ENV, passes the service config validation', () => {
    const imageEnv = dockerfileEnv();
    const config = loadConfig({ ...imageEnv, ...env });
    expect(config.KMS_PROVIDER).toBe('aws');
    expect(config.HOST).toBe('0.0.0.0');
    expect(config.POLICY_FILE).toBe('/etc/envelope/policy.yaml');
    // The KMS endpoint is the local-kms service on its container port (the image's PORT).
    const endpoint = new URL(config.KMS_ENDPOINT!);
    expect(endpoint.hostname).toBe('local-kms');
    expect(endpoint.port).toBe('8080');
  });

  it('needs its POLICY_FILE: without it the same environment is refused, never dev mode', () => {
    const imageEnv = dockerfileEnv();
    const { POLICY_FILE: _policy, ...withoutPolicy } = env;
    expect(() => loadConfig({ ...imageEnv, ...withoutPolicy, KMS_PROVIDER: 'local' })).toThrow(/dev mode \(no POLICY_FILE\) is refused/);
  });

  it('mounts the policy (read-only, with the JWKS it names) and puts the audit log on a named volume', async () => {
    const mounts = composeMounts(envelope);
    for (const mount of mounts.filter((m) => m.type === 'bind')) {
      expect(existsSync(join(REPO_ROOT, mount.source)), `${mount.source} does not exist`).toBe(true);
    }
    const policyHost = hostPathOf(env.POLICY_FILE!, mounts, () => '');
    expect(policyHost).toBe(join(REPO_ROOT, 'examples', 'policy.yaml'));
    expect(mounts.find((m) => m.target === '/etc/envelope')?.readOnly).toBe(true);
    // The policy loads from there, JWKS included (relative to the policy file).
    const store = await PolicyStore.fromFile(policyHost!);
    expect(store.current.mode).not.toBe('dev');

    const auditMount = mounts.find((m) => env.AUDIT_LOG!.startsWith(`${m.target}/`));
    expect(auditMount?.type).toBe('volume');
    expect(auditMount?.readOnly).toBe(false);
    expect(Object.keys(compose.volumes ?? {})).toContain(auditMount!.source);
  });

  it('seeds local-kms with the same file the tests use, in the region and account the tests expect', () => {
    const kmsEnv = composeEnvironment(kms);
    expect(kmsEnv.KMS_REGION).toBe(LOCAL_KMS_REGION);
    expect(kmsEnv.KMS_ACCOUNT_ID).toBe(LOCAL_KMS_ACCOUNT_ID);
    expect(env.AWS_REGION).toBe(LOCAL_KMS_REGION);
    const seed = hostPathOf(kmsEnv.KMS_SEED_PATH ?? '/init/seed.yaml', composeMounts(kms), () => '');
    expect(seed).toBeDefined();
    expect(resolve(seed!)).toBe(resolve(LOCAL_KMS_SEED_PATH));
    expect(statSync(seed!).isFile()).toBe(true);
    expect(readFileSync(seed!, 'utf8')).toContain('alias/default');
  });

  it('starts the service only once local-kms is healthy, and both have health checks', () => {
    expect(envelope.depends_on).toEqual({ 'local-kms': { condition: 'service_healthy' } });
    const kmsCheck = kms.healthcheck?.test;
    expect(Array.isArray(kmsCheck) && kmsCheck.join(' ')).toMatch(/TrentService\.ListAliases.*alias\/default/s);
    expect(envelope.healthcheck?.disable).not.toBe(true);
    expect(imageHealthcheck()).toBeDefined();
  });

  it("reports the service unhealthy when it is not ready (/readyz: KMS, audit log, load shedding), not only when it is dead", () => {
    const command = composeHealthcheck(envelope);
    expect(command.slice(0, 2)).toEqual(['node', '-e']);
    expect(command[2]).toContain('/readyz');
    expect(command[2]).toContain('process.env.PORT');
    expect(durationMs(envelope.healthcheck?.timeout ?? '30s')).toBeLessThanOrEqual(durationMs(envelope.healthcheck?.interval ?? '30s'));
  });

  it('signs the audit log with the seeded alias/audit-signing key', () => {
    expect(env.AUDIT_SIGNING_KEY_ID).toBe('alias/audit-signing');
    const seed = hostPathOf(composeEnvironment(kms).KMS_SEED_PATH ?? '/init/seed.yaml', composeMounts(kms), () => '');
    expect(readFileSync(seed!, 'utf8')).toMatch(/AliasName: alias\/audit-signing\n/);
    const config = loadConfig({ ...dockerfileEnv(), ...env });
    expect(config.AUDIT_SIGNING_KEY_ID).toBe('alias/audit-signing');
  });

  it('limits the container to 512 MiB, with a V8 heap that fits inside it', () => {
    const limit = dockerBytes(String(envelope.mem_limit));
    expect(limit).toBe(512 * 1024 ** 2);
    const heapMiB = Number(/--max-old-space-size=(\d+)/.exec(env.NODE_OPTIONS ?? '')?.[1]);
    // Room beside the heap (V8 adds its young generation to it) for buffers, code and stacks.
    expect(heapMiB * 1024 ** 2).toBeLessThanOrEqual(limit * 0.8);
    expect(heapMiB * 1024 ** 2).toBeGreaterThanOrEqual(limit * 0.5);
  });

  it('gives the service longer to stop than its own shutdown grace, and publishes on loopback only', () => {
    const config = loadConfig({ ...dockerfileEnv(), ...env });
    expect(durationMs(envelope.stop_grace_period ?? '10s')).toBeGreaterThan(config.SHUTDOWN_GRACE_MS);
    expect(envelope.ports).toEqual([`127.0.0.1:${config.PORT}:${config.PORT}`]);
    expect(kms.ports).toBeUndefined();
  });
});

describe.skipIf(skipWithoutLocalKms())('the service with the compose environment', () => {
  let service: ServiceProcess;
  let dir: ReturnType<typeof tempDir>;
  let localEnv: Record<string, string>;

  beforeAll(async () => {
    dir = tempDir('envelope-compose-');
    localEnv = composeServiceLocalEnv({ kmsEndpoint: localKmsEndpoint()!, port: 0, dataDir: dir.path });
    service = await startService(localEnv);
  });
  afterAll(async () => {
    await service?.stop();
    dir?.remove();
  });

  it('runs the example policy: the demo token encrypts and decrypts under tenant A\'s key', async () => {
    // The token examples/policy.yaml publishes for tenant A's billing service (docs/POLICY.md).
    const policyText = readFileSync(join(REPO_ROOT, 'examples', 'policy.yaml'), 'utf8');
    const token = /Tenant A.*Demo token: *([A-Za-z0-9._-]+)/.exec(policyText)?.[1];
    expect(token, 'examples/policy.yaml publishes no demo token for tenant A').toBeDefined();

    const headers = { authorization: `Bearer ${token}` };
    const context = { tenant: 'tenant-a', purpose: 'billing' };
    const plaintext = Buffer.from('compose round trip').toString('base64');
    const encrypted = await sendRetryingOverload(`${service.baseUrl}/v1/encrypt`, {
      headers,
      body: JSON.stringify({ keyId: 'alias/tenant-a', plaintext, context }),
    });
    expect(encrypted.kind === 'response' && encrypted.status, JSON.stringify(encrypted)).toBe(200);
    const { ciphertext, keyId } = json<{ ciphertext: string; keyId: string }>(encrypted);
    expect(keyId).toBe(`arn:aws:kms:${LOCAL_KMS_REGION}:${LOCAL_KMS_ACCOUNT_ID}:key/6f743fd5-495b-4da8-bcea-73337f197393`);

    const decrypted = await sendRetryingOverload(`${service.baseUrl}/v1/decrypt`, { headers, body: JSON.stringify({ ciphertext, context }) });
    expect(json<{ plaintext: string }>(decrypted).plaintext).toBe(plaintext);

    const ready = await send(`${service.baseUrl}/readyz`);
    expect(ready.kind === 'response' && ready.status).toBe(200);
    // The audit log landed where the compose volume maps.
    expect(readFileSync(localEnv.AUDIT_LOG!, 'utf8').trim().split('\n')).toHaveLength(2);
  });

  it("the compose health check passes against the ready service and fails where nothing answers", () => {
    const [file, ...args] = composeHealthcheck(envelope);
    const port = new URL(service.baseUrl).port;
    const run = (env: Record<string, string>) => spawnSync(file === 'node' ? process.execPath : file!, args, { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 20_000 }).status;
    expect(run({ PORT: port })).toBe(0);
    expect(run({ PORT: '1' })).toBe(1);
  });

  it('starts without the checkpoints-disabled error and writes a signed checkpoint at shutdown, verified with the KMS key', async () => {
    expect(service.logRecords().filter((record) => String(record.msg).includes('CHECKPOINTS DISABLED'))).toEqual([]);
    await service.stop();
    const lines = readFileSync(localEnv.AUDIT_LOG!, 'utf8').trim().split('\n');
    expect(lines.some((line) => line.includes('"eventName":"AuditCheckpoint"'))).toBe(true);

    const client = new KMSClient({ endpoint: localKmsEndpoint()!, region: LOCAL_KMS_REGION, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
    const publicKey = join(dir.path, 'audit-signing.pub.pem');
    try {
      writeFileSync(publicKey, await fetchPublicKeyPem(client, 'alias/audit-signing'));
    } finally {
      client.destroy();
    }
    const out: string[] = [];
    const code = await verifyAudit([`--public-key=${publicKey}`, '--instance=compose-envelope', localEnv.AUDIT_LOG!], { out: (text) => out.push(text), err: (text) => out.push(text) });
    expect(out.join('\n')).toMatch(/signed: \d+ checkpoint\(s\) of instance compose-envelope verify/);
    expect(code).toBe(0);
  });
});
