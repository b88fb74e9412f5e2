/**
 * A bad setting stops the real process before it listens: exit code 1, and one message on
 * stderr that names the variable and says what it accepts. One test per class of mistake an
 * operator makes. The processes run `src/server.ts` exactly as `npm start` does (via tsx).
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, type ExpectStatic } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { send } from './helpers/http.js';
import { runUntilExit, startService, tempDir } from './helpers/service-process.js';

let dir: ReturnType<typeof tempDir>;
/** Valid defaults for everything the test is not about; nothing is written outside `dir`. */
let base: Record<string, string>;

beforeAll(() => {
  dir = tempDir();
  base = {
    LOCAL_KEYSTORE: join(dir.path, 'keystore.json'),
    AUDIT_LOG: join(dir.path, 'audit.log'),
    PORT: '0',
    LOG_LEVEL: 'warn',
  };
});
afterAll(() => dir.remove());

async function expectRefused(expect: ExpectStatic, env: Record<string, string>, ...mentions: RegExp[]): Promise<string> {
  const result = await runUntilExit({ ...base, ...env });
  expect(result.timedOut, `the process kept running:\n${result.stdout}`).toBe(false);
  expect(result.code, result.stderr).toBe(1);
  expect(result.stderr).toMatch(/^configuration error: /);
  for (const mention of mentions) expect(result.stderr).toMatch(mention);
  // Refused before listening: nothing was served, no stack trace was dumped.
  expect(result.stdout).not.toContain('Server listening');
  expect(result.stderr).not.toMatch(/\n\s+at /);
  return result.stderr;
}

// Each test starts a process: allow for a loaded machine. The tests share nothing (each its own
// paths, and the test context's expect), so their processes start side by side.
describe('the process refuses a bad configuration', { timeout: 60_000, concurrent: true }, () => {
  it('not a number: PORT=abc', async ({ expect }) => {
    await expectRefused(expect, { PORT: 'abc' }, /PORT: must be integer/, /accepts an integer from 0 to 65535/);
  });

  it('out of range: PORT=70000', async ({ expect }) => {
    await expectRefused(expect, { PORT: '70000' }, /PORT: must be <= 65535/, /accepts an integer from 0 to 65535/);
  });

  it('out of range: CACHE_MAX_MESSAGES=0', async ({ expect }) => {
    await expectRefused(expect, { CACHE_MAX_MESSAGES: '0' }, /CACHE_MAX_MESSAGES: must be >= 1/, /accepts an integer from 1 to /);
  });

  it('unknown provider: KMS_PROVIDER=gcp', async ({ expect }) => {
    await expectRefused(expect, { KMS_PROVIDER: 'gcp' }, /KMS_PROVIDER/, /accepts one of local, aws/);
  });

  it('not a URL: KMS_ENDPOINT without a scheme', async ({ expect }) => {
    await expectRefused(expect, { KMS_ENDPOINT: 'local-kms:8080' }, /KMS_ENDPOINT: must match pattern/, /accepts a string matching \^https\?:\/\//);
  });

  it('missing policy file with the aws provider: KMS_PROVIDER=aws without POLICY_FILE', async ({ expect }) => {
    await expectRefused(
      expect,
      { KMS_PROVIDER: 'aws', AWS_REGION: 'eu-west-2', KMS_ENDPOINT: 'http://127.0.0.1:9' },
      /POLICY_FILE is required when KMS_PROVIDER=aws/,
    );
  });

  it('a POLICY_FILE that does not exist', async ({ expect }) => {
    const missing = join(dir.path, 'no-such-policy.yaml');
    await expectRefused(
      expect,
      { KMS_PROVIDER: 'aws', AWS_REGION: 'eu-west-2', KMS_ENDPOINT: 'http://127.0.0.1:9', POLICY_FILE: missing },
      new RegExp(`POLICY_FILE=${missing}: .*cannot be read \\(ENOENT\\)`, 's'),
      /POLICY_FILE accepts the path of a readable, valid policy file/,
    );
  });

  it('an AUDIT_LOG that cannot be created', async ({ expect }) => {
    // A path under a regular file: no directory can ever be made there, even by root.
    const file = join(dir.path, 'a-regular-file');
    writeFileSync(file, '');
    await expectRefused(
      expect,
      { AUDIT_LOG: join(file, 'audit.log') },
      new RegExp(`AUDIT_LOG=${join(file, 'audit.log')}: cannot open audit log`),
      /AUDIT_LOG accepts a file path this process can create or append to, or "stdout"/,
    );
  });

  it.runIf(process.platform !== 'win32')('a LOCAL_KEYSTORE in a directory others can write', async ({ expect }) => {
    const shared = join(dir.path, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o777);
    await expectRefused(
      expect,
      { LOCAL_KEYSTORE: join(shared, 'keystore.json') },
      new RegExp(`LOCAL_KEYSTORE=${join(shared, 'keystore.json')}: .*directory ${shared} has mode 0777`),
      /LOCAL_KEYSTORE accepts .*owned by this process's user or root, in a directory only that user can write/,
    );
  });

  it('an empty variable means "use the default", as in a compose file (PORT= is not an error)', async ({ expect }) => {
    // The first schema error is reported; with PORT= treated as unset, it is KMS_PROVIDER's.
    const stderr = await expectRefused(expect, { PORT: '', KMS_PROVIDER: 'gcp' }, /KMS_PROVIDER/);
    expect(stderr).not.toMatch(/PORT/);
  });
});

// Dev mode gives DEV_TOKEN every right on every key: it must never start where others reach it.
describe('dev mode (no POLICY_FILE) never starts open', { timeout: 60_000, concurrent: true }, () => {
  const OPEN_HOST = /set POLICY_FILE .*or HOST=127\.0\.0\.1/;

  it('on a non-loopback HOST (the image sets 0.0.0.0)', async ({ expect }) => {
    await expectRefused(expect, { HOST: '0.0.0.0' }, /dev mode \(no POLICY_FILE\) listens on loopback only, and HOST=0\.0\.0\.0/, OPEN_HOST);
  });

  it('on every non-loopback address form', ({ expect }) => {
    for (const host of ['::', '[::]', '10.0.0.5', 'envelope.internal', '::ffff:10.0.0.1', '128.0.0.1']) {
      expect(() => loadConfig({ HOST: host }), host).toThrow(OPEN_HOST);
    }
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) {
      expect(loadConfig({ HOST: host }).HOST, host).toBe(host);
    }
    // With a policy file any address is fine.
    expect(loadConfig({ HOST: '0.0.0.0', POLICY_FILE: 'policy.yaml' }).HOST).toBe('0.0.0.0');
  });

  it('with NODE_ENV=production, even on loopback', async ({ expect }) => {
    await expectRefused(expect, { NODE_ENV: 'production', HOST: '127.0.0.1' }, /dev mode \(no POLICY_FILE\) is refused with NODE_ENV=production: set POLICY_FILE/);
  });

  it('with the network opt-in but the published default token', async ({ expect }) => {
    await expectRefused(
      expect,
      { HOST: '0.0.0.0', DEV_MODE_ALLOW_NETWORK: 'i-understand-this-is-open' },
      /DEV_MODE_ALLOW_NETWORK needs a DEV_TOKEN of your own: the default "dev-token" is published/,
    );
  });

  it('with an opt-in that is not the exact phrase', async ({ expect }) => {
    await expectRefused(
      expect,
      { HOST: '0.0.0.0', DEV_MODE_ALLOW_NETWORK: 'true', DEV_TOKEN: 'a-demo-token-of-my-own' },
      /DEV_MODE_ALLOW_NETWORK: .*accepts exactly i-understand-this-is-open/,
    );
  });

  it('starts off loopback with the opt-in and a token of its own, and says so at error level', async ({ expect }) => {
    const service = await startService({ ...base, LOG_LEVEL: 'info', HOST: '0.0.0.0', DEV_MODE_ALLOW_NETWORK: 'i-understand-this-is-open', DEV_TOKEN: 'a-demo-token-of-my-own' });
    try {
      const loud = service.logRecords().find((record) => String(record.msg).startsWith('DEV MODE OPEN TO THE NETWORK on 0.0.0.0'));
      expect(loud?.level).toBe(50);
      const encrypt = async (token: string) => {
        const outcome = await send(`${service.baseUrl}/v1/encrypt`, { headers: { authorization: `Bearer ${token}` }, body: JSON.stringify({ plaintext: 'aGk=' }) });
        return outcome.kind === 'response' ? outcome.status : outcome.code;
      };
      expect(await encrypt('a-demo-token-of-my-own')).toBe(200);
      expect(await encrypt('dev-token')).toBe(401);
    } finally {
      await service.stop();
    }
  });
});

describe('loadConfig reads only the environment it is given', () => {
  it('ignores process.env when given another environment', () => {
    const saved = process.env.CACHE_MAX_MESSAGES;
    process.env.CACHE_MAX_MESSAGES = '0';
    try {
      expect(loadConfig({}).CACHE_MAX_MESSAGES).toBe(10_000);
    } finally {
      if (saved === undefined) delete process.env.CACHE_MAX_MESSAGES;
      else process.env.CACHE_MAX_MESSAGES = saved;
    }
  });
});

// Apart from the concurrent group above: one more process starting beside them would only add load.
describe('the process refuses an invalid KEY_SETS_FILE', { timeout: 60_000 }, () => {
  it('an invalid KEY_SETS_FILE: refused with the line and column of each error', async ({ expect }) => {
    const file = join(dir.path, 'bad-sets.yaml');
    writeFileSync(file, 'keySets:\n  payments:\n    keys: [alias/payments]\n    generator: alias/payments\n');
    await expectRefused(
      expect,
      { KEY_SETS_FILE: file },
      new RegExp(`KEY_SETS_FILE=${file}: invalid key sets file`),
      /bad-sets\.yaml:3:\d+: keySets\.payments\.keys\[0\]: expected a KMS key ARN/,
      /KEY_SETS_FILE accepts the path of a readable, valid key sets file/,
    );
  });
});
