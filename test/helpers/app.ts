/**
 * Builds the real app for a test, through the process's own composition root (src/compose.ts):
 * a real key provider (the embedded local one in a temp dir, or the AWS SDK provider against
 * local-kms), a real audit log in a temp file, and either dev authentication or a policy file.
 * Nothing is mocked; the result is driven with supertest. buildTestService is the same without
 * Fastify, for tests that call the operations directly.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp } from '../../src/app.js';
import type { AuditLog } from '../../src/audit/audit-log.js';
import { PolicyStore } from '../../src/authz/store.js';
import { compose, type Service } from '../../src/compose.js';
import { loadConfig, type Config } from '../../src/config.js';
import { AwsKmsProvider, type AwsKmsSettings } from '../../src/kms/aws.js';
import { createKeyProvider } from '../../src/kms/create-provider.js';
import { decorateProvider } from '../../src/kms/decorate.js';
import type { KeyProvider } from '../../src/kms/provider.js';
import { ServiceMetrics } from '../../src/metrics/metrics.js';
import { describe } from 'vitest';
import { localKmsEndpoint, localKmsSettings, skipWithoutLocalKms } from './local-kms.js';

export type ProviderKind = 'local' | 'aws';

export interface TestAppOptions {
  provider?: ProviderKind;
  /** Environment overrides, as the process would read them. */
  env?: Record<string, string>;
  /** A policy file path; dev-token authentication when absent. */
  policyFile?: string;
  now?: () => number;
  /** Wraps the provider (e.g. to count calls). */
  wrapProvider?: (provider: KeyProvider) => KeyProvider;
  /** Replace the audit destination (e.g. /dev/full). */
  auditDestination?: string;
  /** For provider 'aws': this local-kms endpoint (e.g. a private startLocalKms()) instead of the shared one. */
  endpoint?: string;
  /** For provider 'aws': timeouts/attempts for the SDK client (default: localKmsSettings'). */
  kmsSettings?: Partial<AwsKmsSettings>;
  /** An application logger (e.g. pino writing to a captured stream). */
  logger?: FastifyBaseLogger;
  /** For provider 'aws': the undecorated provider of another region (a key set's), e.g. a second local-kms. */
  providerFor?: (region: string) => KeyProvider;
}

export interface TestService {
  /** Everything compose() built: operations, caches, budgets, the audit log... */
  service: Service;
  config: Config;
  /** The provider as given to compose (wrapped when wrapProvider was given), before its decorators. */
  provider: KeyProvider;
  audit: AuditLog;
  metrics: ServiceMetrics;
  dir: string;
  auditPath: string;
  /** The audit log's events so far, parsed. */
  auditEvents(): Record<string, unknown>[];
  close(): Promise<void>;
}

export interface TestApp extends TestService {
  app: FastifyInstance;
}

export const DEV_TOKEN = 'dev-token';
export const AUTH = { authorization: `Bearer ${DEV_TOKEN}` };

/** The composed service without Fastify (compose with the test's overrides). */
export async function buildTestService(options: TestAppOptions = {}): Promise<TestService> {
  const dir = mkdtempSync(join(tmpdir(), 'envelope-test-'));
  const auditPath = options.auditDestination ?? join(dir, 'audit.log');
  const kind = options.provider ?? 'local';
  const endpoint = kind === 'aws' ? (options.endpoint ?? localKmsEndpoint()) : undefined;
  if (kind === 'aws' && !endpoint) throw new Error('no local-kms endpoint for an aws-provider test');
  const config = loadConfig({
    LOCAL_KEYSTORE: join(dir, 'keystore.json'),
    AUDIT_LOG: auditPath,
    LOG_LEVEL: 'silent',
    MAX_EVENT_LOOP_DELAY_MS: '0',
    // 429s answered at once: suites that provoke hundreds of them would otherwise wait a second
    // for each. Holding has its own suite (test/admission/refusal-hold.test.ts).
    REFUSAL_HOLD_MAX_MS: '0',
    ...(kind === 'aws' ? { KMS_PROVIDER: 'aws', KMS_ENDPOINT: endpoint!, AWS_REGION: 'eu-west-2', POLICY_FILE: options.policyFile ?? 'unused' } : {}),
    ...(options.policyFile ? { POLICY_FILE: options.policyFile } : {}),
    ...options.env,
  });
  // local-kms takes the SDK's test credentials and short timeouts (localKmsSettings).
  const baseProvider: KeyProvider =
    kind === 'aws' ? new AwsKmsProvider({ settings: localKmsSettings(endpoint!, options.kmsSettings) }) : createKeyProvider(config);
  const provider = options.wrapProvider ? options.wrapProvider(baseProvider) : baseProvider;
  const metrics = new ServiceMetrics({ collectDefaults: false });
  const service = await compose(config, {
    provider,
    metrics,
    // Events are counted exactly by the suites: no checkpoint lines among them.
    checkpoints: false,
    // Dev mode unless a policy file is given (an aws config needs POLICY_FILE set all the same).
    ...(!options.policyFile && { policy: PolicyStore.dev(config.DEV_TOKEN) }),
    ...(options.now && { now: options.now }),
    ...(options.logger && { logger: options.logger as unknown as Logger }),
    ...(options.providerFor && { providerFor: options.providerFor }),
  });
  return {
    service,
    config,
    provider,
    audit: service.auditLog,
    metrics,
    dir,
    auditPath,
    auditEvents: () =>
      readFileSync(auditPath, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    async close() {
      service.stop();
      await service.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function buildTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const built = await buildTestService(options);
  const app = await buildApp(built.service);
  await app.ready();
  return {
    ...built,
    app,
    async close() {
      await app.close();
      await built.close();
    },
  };
}

/** Wraps a provider to count calls per operation: how tests see what reached KMS. */
export function countingProvider(provider: KeyProvider): KeyProvider & { calls: Record<string, number> } {
  const calls: Record<string, number> = {};
  const counted = decorateProvider(provider, (operation, call) => {
    calls[operation] = (calls[operation] ?? 0) + 1;
    return call();
  });
  return Object.assign(counted, { calls });
}

/** The suites that run on both providers. */
export function providerKinds(): ProviderKind[] {
  return ['local', 'aws'];
}

/**
 * One suite per provider (`title` with %s for the kind). The aws suite is skipped as a whole
 * when no local-kms is available outside CI (global setup says so once); in CI it runs, and
 * fails without one.
 */
export function describeProviders(title: string, body: (kind: ProviderKind) => void): void {
  for (const kind of providerKinds()) {
    describe.skipIf(kind === 'aws' && skipWithoutLocalKms())(title.replace('%s', kind), () => body(kind));
  }
}
