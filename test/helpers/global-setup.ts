/**
 * vitest globalSetup: make a shared local-kms available to every test file.
 *
 * - LOCAL_KMS_ENDPOINT already set (CI runs scripts/local-kms.sh start first): check it
 *   answers, and use it.
 * - Otherwise, if the local-kms binary is found, start one on a free loopback port for this
 *   run and stop it in teardown.
 * - Otherwise: in CI (CI=true) throw, because suites against real KMS must fail there, never
 *   skip; locally warn, and those suites skip (skipWithoutLocalKms()).
 *
 * Workers learn the endpoint twice over: process.env.LOCAL_KMS_ENDPOINT (vitest builds each
 * worker's env from process.env after global setup has run) and project.provide(), read with
 * inject('localKmsEndpoint'); localKmsEndpoint() checks both.
 * Dummy AWS credentials are set when none are: the SDK must sign, local-kms never checks.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import {
  LOCAL_KMS_CREDENTIALS,
  findLocalKmsBinary,
  isLocalKmsReady,
  startLocalKms,
  type LocalKmsInstance,
} from './local-kms.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const inCi = process.env.CI === 'true';
  let endpoint = process.env.LOCAL_KMS_ENDPOINT || undefined;
  let instance: LocalKmsInstance | undefined;

  if (endpoint) {
    if (!(await isLocalKmsReady(endpoint, 5_000))) {
      throw new Error(`LOCAL_KMS_ENDPOINT=${endpoint} does not answer as a seeded local-kms (ListAliases)`);
    }
  } else {
    const binary = findLocalKmsBinary() ?? installLocalKms();
    if (binary) {
      instance = await startLocalKms({ binary });
      endpoint = instance.endpoint;
      process.env.LOCAL_KMS_ENDPOINT = endpoint;
    } else if (inCi) {
      throw new Error(
        'CI=true but no local-kms: set LOCAL_KMS_ENDPOINT (scripts/local-kms.sh start) or install the binary ' +
          '(scripts/local-kms.sh install); tests against the KMS wire protocol must not be skipped in CI',
      );
    } else {
      console.warn(
        '[global-setup] local-kms not found (LOCAL_KMS_ENDPOINT unset, no binary): suites against the KMS wire ' +
          'protocol will be SKIPPED. Run scripts/local-kms.sh install to enable them.',
      );
    }
  }

  if (endpoint && !process.env.AWS_ACCESS_KEY_ID && !process.env.AWS_PROFILE) {
    process.env.AWS_ACCESS_KEY_ID = LOCAL_KMS_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = LOCAL_KMS_CREDENTIALS.secretAccessKey;
  }
  project.provide('localKmsEndpoint', endpoint ?? '');

  return async () => {
    await instance?.dispose();
  };
}

/**
 * On a fresh machine with Go, `npm test` builds local-kms itself (scripts/local-kms.sh
 * install: `go install` of the pinned version, about a minute the first time), so the README's
 * one test command really runs every suite.
 */
function installLocalKms(): string | undefined {
  const script = fileURLToPath(new URL('../../scripts/local-kms.sh', import.meta.url));
  console.warn('[global-setup] local-kms not found: installing it with scripts/local-kms.sh install (needs Go)');
  const result = spawnSync('bash', [script, 'install'], { stdio: 'inherit', timeout: 300_000 });
  return result.status === 0 ? findLocalKmsBinary() : undefined;
}
