/** Reload without restart: valid files swap in atomically, invalid ones leave the old policy. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuthenticationError, PolicyError } from '../../src/authz/errors.js';
import { PolicyStore, type PolicyLogger } from '../../src/authz/store.js';

// sha256("token-svc-a")
const HASH_A = '851372898679580a83967f89b61d7a2fb4bf038971f787e7d30aa2edfd245475';

function policyYaml(operations: string[]): string {
  return [
    'version: 1',
    'authentication:',
    '  apiKeys:',
    `    - { name: svc-a, sha256: "${HASH_A}", claims: { tenant: a } }`,
    'rules:',
    '  - id: r1',
    '    principals: [svc-a]',
    `    operations: [${operations.join(', ')}]`,
    '    keys: [alias/a]',
    '',
  ].join('\n');
}

function recordingLogger() {
  const lines: { level: string; obj: object; msg: string | undefined }[] = [];
  const logger: PolicyLogger = {
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => lines.push({ level: 'error', obj, msg }),
  };
  return { logger, lines };
}

const request = (operation: 'encrypt' | 'decrypt') => ({ operation, keyNames: ['alias/a'], context: {} });

describe('PolicyStore', () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'authz-store-'));
    file = join(dir, 'policy.yaml');
    await writeFile(file, policyYaml(['encrypt']));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses to start on an invalid file', async () => {
    await writeFile(file, 'version: 1\nrules: nope\n');
    await expect(PolicyStore.fromFile(file)).rejects.toBeInstanceOf(PolicyError);
  });

  it('keeps the old policy when the new file is invalid, and says why', async () => {
    const { logger, lines } = recordingLogger();
    const store = await PolicyStore.fromFile(file, { logger });
    const before = store.current;

    await writeFile(file, policyYaml(['encrypt', 'explode']));
    const result = await store.reload();

    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(/policy\.yaml:8:\d+: rules\[0\]\.operations\[1\]: unknown operation "explode"/);
    expect(store.current).toBe(before);
    const principal = await store.current.authenticator.authenticate('Bearer token-svc-a');
    expect(store.current.policy.decide(principal, request('encrypt')).allowed).toBe(true);
    expect(lines.at(-1)).toMatchObject({ level: 'error', msg: 'policy reload failed; keeping the previous policy' });
  });

  it('keeps the old policy when the file disappears', async () => {
    const store = await PolicyStore.fromFile(file);
    const before = store.current;
    await rm(file);
    expect((await store.reload()).ok).toBe(false);
    expect(store.current).toBe(before);
  });

  it('swaps in a valid new file; requests in flight keep their snapshot', async () => {
    const { logger, lines } = recordingLogger();
    const store = await PolicyStore.fromFile(file, { logger });
    const inFlight = store.current; // taken at the start of a request
    const principal = await inFlight.authenticator.authenticate('Bearer token-svc-a');
    expect(inFlight.policy.decide(principal, request('decrypt')).allowed).toBe(false);

    await writeFile(file, policyYaml(['decrypt']));
    const result = await store.reload();

    expect(result).toMatchObject({ ok: true, changed: true });
    expect(store.current).not.toBe(inFlight);
    expect(store.current.digest).not.toBe(inFlight.digest);
    // New requests see the new rules...
    expect(store.current.policy.decide(principal, request('decrypt')).allowed).toBe(true);
    expect(store.current.policy.decide(principal, request('encrypt')).allowed).toBe(false);
    // ...the request that started before the reload still sees the old ones.
    expect(inFlight.policy.decide(principal, request('encrypt')).allowed).toBe(true);
    expect(lines.at(-1)).toMatchObject({ level: 'info', msg: 'policy reloaded', obj: expect.objectContaining({ changed: true, rules: 1 }) });
  });

  it('a reload also replaces credentials (revoking an API key)', async () => {
    const store = await PolicyStore.fromFile(file);
    await writeFile(
      file,
      policyYaml(['encrypt']).replace(HASH_A, 'f'.repeat(64)),
    );
    expect((await store.reload()).ok).toBe(true);
    await expect(store.current.authenticator.authenticate('Bearer token-svc-a')).rejects.toBeInstanceOf(AuthenticationError);
  });

  it('concurrent reloads run in order; the last file read wins', async () => {
    const store = await PolicyStore.fromFile(file);
    await writeFile(file, policyYaml(['decrypt']));
    const first = store.reload();
    const second = store.reload();
    const results = await Promise.all([first, second]);
    expect(results[0]).toMatchObject({ ok: true, changed: true });
    expect(results[1]).toMatchObject({ ok: true, changed: false });
  });

  it('reloading an unchanged file reports changed: false', async () => {
    const store = await PolicyStore.fromFile(file);
    expect(await store.reload()).toMatchObject({ ok: true, changed: false, digest: store.current.digest });
  });

  it('dev mode warns loudly and reload is a no-op', async () => {
    const { logger, lines } = recordingLogger();
    const store = PolicyStore.dev('dev-token-123', { logger });
    expect(lines[0]?.level).toBe('warn');
    const principal = await store.current.authenticator.authenticate('Bearer dev-token-123');
    expect(principal).toEqual({ id: 'dev', authMethod: 'dev-token', claims: {} });
    expect(store.current.policy.decide(principal, request('encrypt'))).toEqual({ allowed: true, ruleId: 'dev-all' });
    const before = store.current;
    expect(await store.reload()).toMatchObject({ ok: true, changed: false });
    expect(store.current).toBe(before);
  });
});
