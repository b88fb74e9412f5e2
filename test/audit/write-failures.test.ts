/**
 * Disk-full and I/O errors on a regular file, including a partial write, simulated by
 * wrapping node:fs's writeSync/ftruncateSync (the real ones do the actual work); and the
 * group commit, whose write(2) calls the same wrapper counts.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { AuditWriteError } from '../../src/audit/errors.js';
import { verifyAuditLog } from '../../src/verifier/verify.js';
import { parseLines, readLines, sampleInput, tempDir } from './helpers.js';

const faults = vi.hoisted(() => ({
  /** writeSync calls seen (successful or not), to count write(2) per batch. */
  writeCalls: 0,
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
      faults.writeCalls += 1;
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

/** The AuditWriteError a write is refused with (what the audit hook sees and turns into a 503). */
async function refusal(write: Promise<void>): Promise<AuditWriteError> {
  const error = await write.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(AuditWriteError);
  return error as AuditWriteError;
}

describe('write failures on a regular file', () => {
  it('throws, goes unready, and records AuditSinkRecovered once writes work again', async () => {
    const path = join(tempDir(), 'audit.log');
    const log = AuditLog.open({ destination: path });
    await log.write(sampleInput({ requestID: 'before' }));

    faults.writeError = 'ENOSPC';
    const refusals = [await refusal(log.write(sampleInput({ requestID: 'refused-1' }))), await refusal(log.write(sampleInput({ requestID: 'refused-2' })))];
    expect(log.isWritable()).toBe(false); // probe fails too, and is not counted as a refused request
    expect(refusals.map((error) => error.code)).toEqual(['ENOSPC', 'ENOSPC']);

    faults.writeError = undefined;
    // The probe is rate limited to once a second; a real request recovers immediately.
    await log.write(sampleInput({ requestID: 'after' }));
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
      await expect(log.write(sampleInput())).rejects.toThrow(AuditWriteError);
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
    await log.write(sampleInput({ requestID: 'one' }));
    const sizeBefore = fs.statSync(path).size;

    faults.writeError = 'ENOSPC';
    faults.partialBytes = 100;
    await expect(log.write(sampleInput({ requestID: 'half' }))).rejects.toThrow(AuditWriteError);
    expect(fs.statSync(path).size).toBe(sizeBefore);

    faults.writeError = undefined;
    await log.write(sampleInput({ requestID: 'two' }));
    await log.close();
    expect(parseLines(path).map((event) => event.requestID ?? event.eventName)).toEqual(['one', 'AuditSinkRecovered', 'two']);
    await expect(verifyAuditLog(path)).resolves.toMatchObject({ ok: true, events: 3 });
  });

  it('refuses everything after a partial line it cannot remove; a restart resumes the chain', async () => {
    const path = join(tempDir(), 'audit.log');
    const log = AuditLog.open({ destination: path });
    await log.write(sampleInput({ requestID: 'one' }));

    faults.writeError = 'EIO';
    faults.partialBytes = 50;
    faults.truncateFails = true;
    await expect(log.write(sampleInput())).rejects.toThrow(AuditWriteError);
    faults.writeError = undefined;
    faults.truncateFails = false;
    await expect(log.write(sampleInput())).rejects.toThrow(/unusable/);
    expect(log.isWritable()).toBe(false);
    await log.close();

    const restarted = AuditLog.open({ destination: path });
    await restarted.write(sampleInput({ requestID: 'two' }));
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

describe('group commit: the lines of one event-loop turn share one write(2)', () => {
  it('writes a turn with one write, in call order, and resolves each write only once its line is in the file', async () => {
    const path = join(tempDir(), 'audit.log');
    const log = AuditLog.open({ destination: path });
    const callsBefore = faults.writeCalls;
    const seenWhenResolved: boolean[] = [];
    const writes = Array.from({ length: 50 }, (_, index) =>
      log.write(sampleInput({ requestID: `turn-${index}` })).then(() => {
        seenWhenResolved.push(fs.readFileSync(path, 'utf8').includes(`"requestID":"turn-${index}"`));
      }),
    );
    expect(readLines(path)).toHaveLength(0); // queued, not yet written: nobody has been answered
    await Promise.all(writes);

    expect(faults.writeCalls - callsBefore).toBe(1);
    expect(seenWhenResolved).toEqual(Array.from({ length: 50 }, () => true));
    expect(parseLines(path).map((event) => event.requestID)).toEqual(Array.from({ length: 50 }, (_, index) => `turn-${index}`));
    expect(log.chainHead()?.sequence).toBe(49);
    await log.close();
    await expect(verifyAuditLog(path)).resolves.toMatchObject({ ok: true, events: 50 });
  });

  it('a failed write refuses every request of the turn, leaves none of its lines, and the chain goes on from before it', async () => {
    const path = join(tempDir(), 'audit.log');
    const log = AuditLog.open({ destination: path });
    await log.write(sampleInput({ requestID: 'before' }));
    const headBefore = log.chainHead();
    const sizeBefore = fs.statSync(path).size;

    faults.writeError = 'ENOSPC';
    faults.partialBytes = 700; // the first line and part of the second reach the disk
    const outcomes = await Promise.allSettled(
      ['lost-1', 'lost-2', 'lost-3'].map((requestID) => log.write(sampleInput({ requestID }))),
    );
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected', 'rejected']);
    for (const outcome of outcomes) expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(AuditWriteError);
    expect(outcomes.map((outcome) => ((outcome as PromiseRejectedResult).reason as AuditWriteError).code)).toEqual(['ENOSPC', 'ENOSPC', 'ENOSPC']);
    expect(fs.statSync(path).size).toBe(sizeBefore);
    expect(log.chainHead()).toEqual(headBefore);

    faults.writeError = undefined;
    await Promise.all([log.write(sampleInput({ requestID: 'after-1' })), log.write(sampleInput({ requestID: 'after-2' }))]);
    await log.close();
    const events = parseLines(path);
    expect(events.map((event) => event.requestID ?? event.eventName)).toEqual(['before', 'AuditSinkRecovered', 'after-1', 'after-2']);
    expect(events[1]).toMatchObject({ serviceEventDetails: { failedWrites: 3 } });
    expect(JSON.stringify(events)).not.toContain('lost-');
    await expect(verifyAuditLog(path)).resolves.toMatchObject({ ok: true, events: 4 });
  });

  it('a turn that queues over 1 MiB is written at once, and a failure there reaches every writer of it', async () => {
    const path = join(tempDir(), 'audit.log');
    const log = AuditLog.open({ destination: path });
    // Contexts are not truncated: four ~300 KB events pass the 1 MiB batch bound on the fourth.
    const big = (requestID: string) =>
      sampleInput({ requestID, requestParameters: { keyId: 'alias/default', encryptionContext: { blob: 'x'.repeat(300_000) } } });

    const callsBefore = faults.writeCalls;
    await Promise.all(['b1', 'b2', 'b3', 'b4', 'b5'].map((id) => log.write(big(id))));
    expect(faults.writeCalls - callsBefore).toBe(2); // b1–b4 at once, b5 at the end of the turn
    expect(parseLines(path).map((event) => event.requestID)).toEqual(['b1', 'b2', 'b3', 'b4', 'b5']);

    faults.writeError = 'EIO';
    const outcomes = await Promise.allSettled(['f1', 'f2', 'f3', 'f4'].map((id) => log.write(big(id))));
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
    faults.writeError = undefined;
    await log.write(sampleInput({ requestID: 'after' }));
    await log.close();
    const events = parseLines(path);
    expect(events.map((event) => event.requestID ?? event.eventName)).toEqual(['b1', 'b2', 'b3', 'b4', 'b5', 'AuditSinkRecovered', 'after']);
    expect(events[5]).toMatchObject({ serviceEventDetails: { failedWrites: 4 } });
    await expect(verifyAuditLog(path)).resolves.toMatchObject({ ok: true, events: 7 });
  });

  it('close() writes what the turn queued before closing', async () => {
    const path = join(tempDir(), 'audit.log');
    const log = AuditLog.open({ destination: path });
    const pending = [log.write(sampleInput({ requestID: 'a' })), log.write(sampleInput({ requestID: 'b' }))];
    await log.close();
    await expect(Promise.all(pending)).resolves.toBeDefined();
    expect(parseLines(path).map((event) => event.requestID)).toEqual(['a', 'b']);
  });
});
