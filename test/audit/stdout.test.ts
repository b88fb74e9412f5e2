import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GENESIS_HASH } from '../../src/audit/chain.js';
import { verifyAuditLog } from '../../src/verifier/verify.js';
import { tempDir } from './helpers.js';

/** A child process that writes `count` events with AUDIT_LOG=stdout. */
function runWriter(count: number): string {
  const script = `
    import { AuditLog } from './src/audit/audit-log.js';
    const log = AuditLog.open({ destination: 'stdout' });
    for (let i = 0; i < ${count}; i++) log.write({
      eventName: 'ListKeys', userIdentity: { type: 'anonymous', principalId: 'anonymous' },
      sourceIPAddress: '::1', userAgent: null, requestID: 'r' + i, httpStatus: 401,
      requestParameters: null, responseElements: null, additionalEventData: { kmsRequestIds: [] },
    });
    await log.close();
    process.stdout.write('{"level":30,"msg":"an app log line on the same stream"}\\n');
  `;
  const result = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: join(import.meta.dirname, '..', '..'),
    encoding: 'utf8',
    timeout: 20_000,
  });
  expect(result.status, result.stderr).toBe(0);
  return result.stdout;
}

describe('AUDIT_LOG=stdout', () => {
  it('writes a chain that starts fresh each process start and verifies once app lines are filtered out', async () => {
    const first = runWriter(2);
    const second = runWriter(1);
    const auditLines = (output: string): string[] => output.split('\n').filter((line) => line.startsWith('{"eventVersion":'));

    for (const output of [first, second]) {
      const [head] = auditLines(output);
      expect(JSON.parse(head ?? '{}')).toMatchObject({ sequence: 0, previousHash: GENESIS_HASH });
    }
    const path = join(tempDir(), 'captured.log');
    writeFileSync(path, `${auditLines(first).join('\n')}\n`);
    await expect(verifyAuditLog(path)).resolves.toMatchObject({ ok: true, events: 2 });
  });
});
