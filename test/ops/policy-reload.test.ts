/**
 * SIGHUP reloads POLICY_FILE in the running process (`kill -HUP`, `docker compose kill -s
 * SIGHUP envelope`, or a Kubernetes ConfigMap update plus a signal): a valid new file takes
 * effect for the next request; an invalid one is rejected with an error log line and the
 * previous policy stays in force. The process keeps serving throughout.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from './helpers/http.js';
import { sleep, startService, tempDir, type ServiceProcess } from './helpers/service-process.js';

const FIRST = 'reload-test-token-first-6d0c';
const SECOND = 'reload-test-token-second-91ab';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

function policy(tokens: Record<string, string>): string {
  const names = Object.keys(tokens);
  return [
    'version: 1',
    'authentication:',
    '  apiKeys:',
    ...names.map((name) => `    - { name: ${name}, sha256: "${sha256(tokens[name]!)}" }`),
    'rules:',
    '  - id: encrypt-default',
    `    principals: [${names.join(', ')}]`,
    '    operations: [encrypt]',
    '    keys: [alias/default]',
    '',
  ].join('\n');
}

let service: ServiceProcess;
let dir: ReturnType<typeof tempDir>;
let policyFile: string;

beforeAll(async () => {
  dir = tempDir();
  policyFile = join(dir.path, 'policy.yaml');
  writeFileSync(policyFile, policy({ first: FIRST }));
  service = await startService({
    LOCAL_KEYSTORE: join(dir.path, 'keystore.json'),
    AUDIT_LOG: join(dir.path, 'audit.log'),
    POLICY_FILE: policyFile,
    LOG_LEVEL: 'info',
  });
});
afterAll(async () => {
  await service?.stop();
  dir?.remove();
});

async function statusWith(token: string): Promise<number> {
  const result = await send(`${service.baseUrl}/v1/encrypt`, {
    headers: { authorization: `Bearer ${token}` },
    body: JSON.stringify({ plaintext: Buffer.from('reload').toString('base64') }),
  });
  if (result.kind !== 'response') throw new Error(result.message);
  return result.status;
}

/** Sends SIGHUP and waits for the store's log line about it. */
async function reload(expected: 'policy reloaded' | 'policy reload failed; keeping the previous policy'): Promise<Record<string, unknown>> {
  const before = service.logRecords().length;
  service.signal('SIGHUP');
  const deadline = Date.now() + 10_000;
  for (;;) {
    const line = service.logRecords().slice(before).find((record) => String(record.msg).startsWith('policy reload'));
    if (line) {
      expect(line.msg).toBe(expected);
      return line;
    }
    if (Date.now() > deadline) throw new Error('no policy reload log line after SIGHUP');
    await sleep(20);
  }
}

interface PolicyMetrics {
  success: number;
  failure: number;
  lastReloadSuccessful: number;
  loadedAt: number;
  digests: string[];
}

/** The policy series of the process's /metrics. */
async function policyMetrics(): Promise<PolicyMetrics> {
  const scraped = await send(`${service.baseUrl}/metrics`);
  if (scraped.kind !== 'response') throw new Error(scraped.message);
  const lines = scraped.body.split('\n');
  const value = (series: string): number => {
    const line = lines.find((candidate) => candidate.startsWith(`${series} `));
    if (line === undefined) throw new Error(`no ${series} in /metrics`);
    return Number(line.slice(series.length + 1));
  };
  const digests = lines.flatMap((line) => /^policy_info\{digest="([^"]*)"\} 1$/.exec(line)?.[1] ?? []);
  return {
    success: value('policy_reloads_total{outcome="success"}'),
    failure: value('policy_reloads_total{outcome="failure"}'),
    lastReloadSuccessful: value('policy_last_reload_successful'),
    loadedAt: value('policy_loaded_timestamp_seconds'),
    digests,
  };
}

describe('SIGHUP', () => {
  it('starts with the policy file in force', async () => {
    expect(await statusWith(FIRST)).toBe(200);
    expect(await statusWith(SECOND)).toBe(401);
    const metrics = await policyMetrics();
    expect(metrics).toMatchObject({ success: 0, failure: 0, lastReloadSuccessful: 1, digests: [sha256(policy({ first: FIRST }))] });
    expect(Math.abs(metrics.loadedAt - Date.now() / 1000)).toBeLessThan(120);
  });

  it('reloads a valid new policy file: the next request is judged by it', async () => {
    const before = await policyMetrics();
    writeFileSync(policyFile, policy({ first: FIRST, second: SECOND }));
    const line = await reload('policy reloaded');
    expect(line).toMatchObject({ changed: true, policyFile });
    expect(await statusWith(SECOND)).toBe(200);
    expect(await statusWith(FIRST)).toBe(200);
    // /metrics shows the new policy: one digest series (the file's sha256), a later load time.
    const after = await policyMetrics();
    expect(after).toMatchObject({ success: 1, failure: 0, lastReloadSuccessful: 1, digests: [sha256(policy({ first: FIRST, second: SECOND }))] });
    expect(after.loadedAt).toBeGreaterThan(before.loadedAt);
  });

  it('rejects an invalid file and keeps the previous policy; the process keeps running', async () => {
    const before = await policyMetrics();
    writeFileSync(policyFile, 'version: 2\nrules: []\n');
    await reload('policy reload failed; keeping the previous policy');
    expect(await statusWith(SECOND)).toBe(200);
    expect(service.child.exitCode).toBeNull();
    // The failure is visible without reading logs; the digest and load time are the old policy's.
    expect(await policyMetrics()).toEqual({ ...before, failure: 1, lastReloadSuccessful: 0 });
  });

  it('revokes a token removed from the file', async () => {
    writeFileSync(policyFile, policy({ first: FIRST }));
    await reload('policy reloaded');
    expect(await statusWith(SECOND)).toBe(401);
    expect(await statusWith(FIRST)).toBe(200);
    expect(await policyMetrics()).toMatchObject({ success: 2, failure: 1, lastReloadSuccessful: 1, digests: [sha256(policy({ first: FIRST }))] });
  });

  it('refuses a 1 MiB policy nested thousands of levels deep, naming where, and keeps serving the previous policy', async () => {
    const before = await policyMetrics();
    const prefix = `${policy({ first: FIRST, second: SECOND })}extra: `;
    const levels = Math.floor((1024 * 1024 - prefix.length - 1) / 2);
    const deep = `${prefix}${'['.repeat(levels)}${']'.repeat(levels)}\n`;
    writeFileSync(policyFile, deep);
    const line = await reload('policy reload failed; keeping the previous policy');
    const extraLine = prefix.split('\n').length;
    expect(String((line.err as { message?: unknown } | undefined)?.message)).toContain(`${policyFile}:${extraLine}:${'extra: '.length + 64}: YAML: nested deeper than 64 levels`);
    expect(service.child.exitCode).toBeNull();
    expect(await statusWith(FIRST)).toBe(200);
    expect(await statusWith(SECOND)).toBe(401);
    expect(await policyMetrics()).toEqual({ ...before, failure: before.failure + 1, lastReloadSuccessful: 0 });
  });
});
