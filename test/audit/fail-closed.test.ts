import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { AuditWriteError } from '../../src/audit/errors.js';
import { sampleInput, tempDir } from './helpers.js';

const haveDevFull = existsSync('/dev/full');
if (!haveDevFull) console.warn('[audit] no /dev/full on this system: the full-sink suite is SKIPPED');

describe.skipIf(!haveDevFull)('fail closed on a full sink (AUDIT_LOG=/dev/full)', () => {
  it('write() throws AuditWriteError', async () => {
    const log = AuditLog.open({ destination: '/dev/full' });

    const error = await log.write(sampleInput()).then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(AuditWriteError);
    expect((error as AuditWriteError).code).toBe('ENOSPC');
    expect(log.isWritable()).toBe(false);
    // still failing on the next attempt; readiness stays false
    await expect(log.write(sampleInput())).rejects.toThrow(AuditWriteError);
    expect(log.isWritable()).toBe(false);
    expect(log.chainHead()).toBeNull();
    await log.close();
  });
});

describe('fail closed', () => {

  it('a closed log refuses to write and is not writable', async () => {
    const log = AuditLog.open({ destination: join(tempDir(), 'audit.log') });
    await log.write(sampleInput());
    expect(log.isWritable()).toBe(true);
    await log.close();
    await log.close(); // idempotent
    await expect(log.write(sampleInput())).rejects.toThrow(AuditWriteError);
    await expect(log.write(sampleInput())).rejects.toThrow(/closed/);
    expect(log.isWritable()).toBe(false);
  });

  it('open() throws AuditWriteError when the path cannot be opened', () => {
    const dir = tempDir();
    expect(() => AuditLog.open({ destination: dir })).toThrow(AuditWriteError); // a directory
    expect(() => AuditLog.open({ destination: '/proc/version/audit.log' })).toThrow(AuditWriteError);
  });

  it('refuses a second writer on the same file in this process (two chains would interleave)', async () => {
    const path = join(tempDir(), 'audit.log');
    const first = AuditLog.open({ destination: path });
    expect(() => AuditLog.open({ destination: path })).toThrow(/already open in this process/);
    await first.close();
    const second = AuditLog.open({ destination: path }); // fine once the first is closed
    await second.close();
  });
});
