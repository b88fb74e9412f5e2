import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { AuditWriteError } from '../../src/audit/errors.js';
import { sampleInput, tempDir } from './helpers.js';

describe('fail closed', () => {
  it.skipIf(!existsSync('/dev/full'))('write() throws AuditWriteError when the sink is full (AUDIT_LOG=/dev/full)', async () => {
    const failures: AuditWriteError[] = [];
    let written = 0;
    const log = AuditLog.open({
      destination: '/dev/full',
      onWritten: () => (written += 1),
      onFailed: (error) => failures.push(error),
    });

    await expect(log.write(sampleInput())).rejects.toThrow(AuditWriteError);
    expect(failures).toHaveLength(1);
    expect(failures[0]?.code).toBe('ENOSPC');
    expect(written).toBe(0);
    expect(log.isWritable()).toBe(false);
    // still failing on the next attempt; readiness stays false
    await expect(log.write(sampleInput())).rejects.toThrow(AuditWriteError);
    expect(log.isWritable()).toBe(false);
    expect(log.chainHead()).toBeNull();
    await log.close();
  });

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

  it('swallows exceptions from metrics callbacks: a written event is not a failed request', async () => {
    const log = AuditLog.open({
      destination: join(tempDir(), 'audit.log'),
      onWritten: () => {
        throw new Error('metrics bug');
      },
    });
    await expect(log.write(sampleInput())).resolves.toBeUndefined();
    await log.close();
  });
});
