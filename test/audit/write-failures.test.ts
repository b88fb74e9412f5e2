/**
 * Disk-full and I/O errors on a regular file, including a partial write, simulated by
 * wrapping node:fs's writeSync/ftruncateSync (the real ones do the actual work).
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { AuditWriteError } from '../../src/audit/errors.js';
import { verifyAuditLog } from '../../src/audit/verify.js';
import { parseLines, readLines, sampleInput, tempDir } from './helpers.js';

const faults = vi.hoisted(() => ({
  /** errno code the next writeSync calls fail with, after writing `partialBytes` for real. */
  writeError: undefined as string | undefined,
  partialBytes: 0,
  truncateFails: false,
}));

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const errno = (code: string): Error => Object.assign(new Error(`${code}: simulated`), { code });
  return {
    ...real,
    writeSync: (fd: number, buffer: Buffer, offset = 0, length = buffer.length - offset): number => {
      if (faults.writeError === undefined) return real.writeSync(fd, buffer, offset, length);
      if (faults.partialBytes > 0) {
        const written = real.writeSync(fd, buffer, offset, Math.min(length, faults.partialBytes));
        faults.partialBytes = 0;
        return written; // the next call (for the rest) fails
      }
      throw errno(faults.writeError);
    },
    ftruncateSync: (fd: number, length?: number): void => {
      if (faults.truncateFails) throw errno('EIO');
      real.ftruncateSync(fd, length);
    },
  };
});

afterEach(() => {
  faults.writeError = undefined;
  faults.partialBytes = 0;
  faults.truncateFails = false;
});

describe('write failures on a regular file', () => {
  it('throws, goes unready, and records AuditSinkRecovered once writes work again', async () => {
    const path = join(tempDir(), 'audit.log');
    const failed: string[] = [];
    const log = AuditLog.open({ destination: path, onFailed: (error) => failed.push(error.code) });
    log.write(sampleInput({ requestID: 'before' }));

    faults.writeError = 'ENOSPC';
    expect(() => log.write(sampleInput({ requestID: 'refused-1' }))).toThrow(AuditWriteError);
    expect(() => log.write(sampleInput({ requestID: 'refused-2' }))).toThrow(AuditWriteError);
    expect(log.isWritable()).toBe(false); // probe fails too, and is not counted as a refused request
    expect(failed).toEqual(['ENOSPC', 'ENOSPC']);

    faults.writeError = undefined;
    // The probe is rate limited to once a second; a real request recovers immediately.
    log.write(sampleInput({ requestID: 'after' }));
    expect(log.isWritable()).toBe(true);
    await log.close();

    const events = parseLines(path);
    expect(events.map((event) => event.eventName)).toEqual(['Encrypt', 'AuditSinkRecovered', 'Encrypt']);
    expect(events[1]).toMatchObject({ eventType: 'ServiceEvent', serviceEventDetails: { failedWrites: 2, lastErrorCode: 'ENOSPC' } });
    expect(JSON.stringify(events)).not.toContain('refused');
    await expect(verifyAuditLog(path)).resolves.toMatchObject({ ok: true, events: 3 });
  });

  it('readiness probe recovers on its own when no request comes (instance out of rotation)', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const path = join(tempDir(), 'audit.log');
      const log = AuditLog.open({ destination: path });
      faults.writeError = 'EIO';
      expect(() => log.write(sampleInput())).toThrow(AuditWriteError);
      faults.writeError = undefined;
      vi.advanceTimersByTime(1_500);
      expect(log.isWritable()).toBe(true);
      await log.close();
      expect(parseLines(path).map((event) => event.eventName)).toEqual(['AuditSinkRecovered']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('rolls back a partial line so the file stays whole lines and the chain continues', async () => {
    const path = join(tempDir(), 'audit.log');
    const log = AuditLog.open({ destination: path });
    log.write(sampleInput({ requestID: 'one' }));
    const sizeBefore = fs.statSync(path).size;

    faults.writeError = 'ENOSPC';
    faults.partialBytes = 100;
    expect(() => log.write(sampleInput({ requestID: 'half' }))).toThrow(AuditWriteError);
    expect(fs.statSync(path).size).toBe(sizeBefore);

    faults.writeError = undefined;
    log.write(sampleInput({ requestID: 'two' }));
    await log.close();
    expect(parseLines(path).map((event) => event.requestID ?? event.eventName)).toEqual(['one', 'AuditSinkRecovered', 'two']);
    await expect(verifyAuditLog(path)).resolves.toMatchObject({ ok: true, events: 3 });
  });

  it('refuses everything after a partial line it cannot remove; a restart resumes the chain', async () => {
    const path = join(tempDir(), 'audit.log');
    const log = AuditLog.open({ destination: path });
    log.write(sampleInput({ requestID: 'one' }));

    faults.writeError = 'EIO';
    faults.partialBytes = 50;
    faults.truncateFails = true;
    expect(() => log.write(sampleInput())).toThrow(AuditWriteError);
    faults.writeError = undefined;
    faults.truncateFails = false;
    expect(() => log.write(sampleInput())).toThrow(/unusable/);
    expect(log.isWritable()).toBe(false);
    await log.close();

    const restarted = AuditLog.open({ destination: path });
    restarted.write(sampleInput({ requestID: 'two' }));
    await restarted.close();
    const lines = readLines(path);
    expect(lines).toHaveLength(4); // one, the 50-byte fragment, AuditChainResumed, two
    expect(lines[1]).toHaveLength(50);
    await expect(verifyAuditLog(path)).resolves.toMatchObject({
      ok: true,
      events: 3,
      resumptions: [{ line: 3, damagedLine: 2, reason: 'partial-last-line' }],
    });
  });
});
