/**
 * `npm run keys`: the main flow runs as a process exactly as an operator runs it (tsx),
 * against a keystore in a temp directory, and what it changed is read back by the real local
 * provider, as the service reads the keystore when it starts. The refusals and the usage
 * matrix call the same main() in-process (one process start each would add seconds apiece).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KmsError } from '../../src/kms/errors.js';
import { main } from '../../src/cli/keys.js';
import { LocalKeyProvider } from '../../src/kms/local.js';

let dir: string;
let keystore: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'keys-cli-'));
  keystore = join(dir, 'keystore.json');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** As `LOCAL_KEYSTORE=… npm run keys -- ARGS`. */
function keysProcess(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/keys.ts', ...args], {
    encoding: 'utf8',
    env: { ...process.env, LOCAL_KEYSTORE: keystore },
    timeout: 30_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** The same command in-process, on the same keystore. */
async function keys(...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const status = await main(['--keystore', keystore, ...args], { out: (text) => out.push(text), err: (text) => err.push(text) });
  return { status, stdout: out.join('\n'), stderr: err.join('\n') };
}

async function withProvider<T>(use: (provider: LocalKeyProvider) => Promise<T>): Promise<T> {
  const provider = new LocalKeyProvider({ path: keystore });
  try {
    return await use(provider);
  } finally {
    await provider.close();
  }
}

async function refusal(call: Promise<unknown>): Promise<string | undefined> {
  return call.then(
    () => undefined,
    (error: unknown) => (error instanceof KmsError ? error.code : String(error)),
  );
}

const KEY_ID = /key\/([0-9a-f-]{36})/;
const lineOf = (listing: string, keyId: string) => listing.split('\n').find((entry) => entry.startsWith(keyId));

describe('npm run keys', () => {
  it('creates a key, aliases it, lists it, disables it: the provider then refuses the key', async () => {
    const created = keysProcess('create');
    expect(created.status).toBe(0);
    const keyId = KEY_ID.exec(created.stdout)?.[1] ?? '';
    expect(keyId).not.toBe('');
    expect(created.stdout).toContain('restart the service');
    // The missing keystore was created as the service creates it: a key behind alias/default.
    expect(created.stderr).toContain('created local keystore');

    const aliased = keysProcess('alias', 'alias/payments', keyId);
    expect(aliased.status).toBe(0);
    expect(aliased.stdout).toContain(`alias/payments -> arn:aws:kms:local:000000000000:key/${keyId}`);

    const listed = keysProcess('list');
    expect(listed.status).toBe(0);
    expect(lineOf(listed.stdout, keyId)).toMatch(/Enabled.*alias\/payments/);
    expect(listed.stdout).toContain('alias/default');
    const generated = await withProvider((provider) => provider.generateDataKey('alias/payments', { tenant: 'a' }));
    expect(generated.keyArn).toContain(keyId);
    generated.plaintextKey.fill(0);

    expect(keysProcess('disable', keyId).status).toBe(0);
    expect(await withProvider((provider) => refusal(provider.generateDataKey('alias/payments', { tenant: 'a' })))).toBe('KeyDisabled');
    expect(lineOf((await keys('list')).stdout, keyId)).toMatch(/Disabled/);

    expect((await keys('enable', keyId)).status).toBe(0);
    expect(await withProvider((provider) => refusal(provider.generateDataKey('alias/payments', {})))).toBeUndefined();
  });

  it('exits 2 with the usage on bad usage, before touching the keystore', async () => {
    const spawned = keysProcess('frobnicate');
    expect(spawned.status).toBe(2);
    expect(spawned.stderr).toContain('unknown command "frobnicate"');
    expect(spawned.stderr).toContain('usage: npm run keys');
    for (const args of [[], ['disable'], ['alias', 'alias/x'], ['alias', 'not-an-alias', 'k'], ['create', '--alias', 'alias/aws/x'], ['list', '--bogus'], ['schedule-deletion', 'k', '--days', 'soon'], ['enable', 'k', '--update']]) {
      const result = await keys(...args);
      expect(result.status, args.join(' ')).toBe(2);
      expect(result.stderr).toContain('usage: npm run keys');
    }
    expect(existsSync(keystore)).toBe(false);
    const help = await keys('--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('usage: npm run keys');
  });

  it('exits 1 with the reason on what the keystore refuses, changing nothing', async () => {
    const keyId = KEY_ID.exec((await keys('create', '--alias', 'alias/app')).stdout)?.[1] ?? '';
    const byAlias = await keys('disable', 'alias/app');
    expect(byAlias.status).toBe(1);
    expect(byAlias.stderr).toMatch(/not an alias/);

    const taken = await keys('create', '--alias', 'alias/app');
    expect(taken.status).toBe(1);
    expect(taken.stderr).toMatch(/alias alias\/app already exists/);
    expect((await keys('list')).stdout.trim().split('\n')).toHaveLength(2); // no key left behind

    const unknown = await keys('enable', '00000000-0000-4000-8000-000000000000');
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(/does not exist/);

    const scheduled = await keys('schedule-deletion', keyId, '--days', '7');
    expect(scheduled.status).toBe(0);
    expect((await keys('enable', keyId)).stderr).toMatch(/pending deletion/);
    expect((await keys('cancel-deletion', keyId)).stdout).toMatch(/Disabled/);

    chmodSync(keystore, 0o644);
    const widened = await keys('list');
    expect(widened.status).toBe(1);
    expect(widened.stderr).toContain(`chmod 600 ${keystore}`);
  });
});
