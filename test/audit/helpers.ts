/** Shared fixtures for the audit tests: temp dirs, a sample event, reading lines back. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import type { AuditEventInput } from '../../src/audit/event.js';

const dirs: string[] = [];

/** A fresh directory removed after the test. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'audit-test-'));
  dirs.push(dir);
  return dir;
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

export function sampleInput(overrides: Partial<AuditEventInput> = {}): AuditEventInput {
  return {
    eventName: 'Encrypt',
    userIdentity: { type: 'api-key', principalId: 'billing', ruleId: 'billing-encrypt' },
    sourceIPAddress: '10.0.0.7',
    userAgent: 'curl/8.5.0',
    requestID: 'req-1',
    httpStatus: 200,
    requestParameters: { keyId: 'alias/default', encryptionContext: { tenant: 'acme' }, plaintextBytes: 42, aadBytes: 8 },
    responseElements: { keyId: 'arn:aws:kms:eu-west-2:111122223333:key/1234', ciphertextBytes: 190 },
    additionalEventData: {
      dataKeyId: '0123456789abcdef0123456789abcdef',
      cacheHit: false,
      kmsRequestIds: ['6f8c3a1e-0000-4000-8000-000000000001'],
      decision: 'allow',
    },
    ...overrides,
  };
}

/** Writes `count` events to a new log at `path` and closes it. */
export async function writeEvents(path: string, count: number): Promise<void> {
  const log = AuditLog.open({ destination: path });
  for (let index = 0; index < count; index += 1) await log.write(sampleInput({ requestID: `req-${index}` }));
  await log.close();
}

/** The file's lines (without the final empty string after the last newline). */
export function readLines(path: string): string[] {
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

export function writeLines(path: string, lines: string[]): void {
  writeFileSync(path, lines.map((line) => `${line}\n`).join(''));
}

export function parseLines(path: string): Record<string, unknown>[] {
  return readLines(path).map((line) => JSON.parse(line) as Record<string, unknown>);
}
