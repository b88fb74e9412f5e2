/**
 * Rotation: when the file at AUDIT_LOG is renamed or deleted (logrotate), the log follows the
 * path. Nothing is written to a file that is no longer at the path, the new file's first line
 * continues the previous file's chain, and the rotated set verifies as one log.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, renameSync, rmdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { AuditWriteError } from '../../src/audit/errors.js';
import { main } from '../../src/cli/audit-verify.js';
import { verifyAuditLogs } from '../../src/verifier/verify.js';
import { parseLines, readLines, sampleInput, tempDir, writeEvents } from './helpers.js';

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** The last line of `older` is what the first line of `newer` must point back to. */
function expectContinues(older: string, newer: string): void {
  const last = readLines(older).at(-1)!;
  const first = parseLines(newer)[0]!;
  expect(first.previousHash).toBe(sha256(last));
  expect(first.sequence).toBe((JSON.parse(last) as { sequence: number }).sequence + 1);
}

function sizeOf(path: string): number {
  return statSync(path).size;
}

describe('the audit log follows its path', () => {
  it('renamed (logrotate without create): the next write goes to a new file that continues the chain', async () => {
    const dir = tempDir();
    const path = join(dir, 'audit.log');
    const log = AuditLog.open({ destination: path });
    await log.write(sampleInput({ requestID: 'before' }));
    renameSync(path, `${path}.1`);
    const rotatedSize = sizeOf(`${path}.1`);

    await Promise.all([log.write(sampleInput({ requestID: 'after-1' })), log.write(sampleInput({ requestID: 'after-2' }))]);
    await log.close();

    expect(sizeOf(`${path}.1`)).toBe(rotatedSize); // nothing more went to the renamed file
    const events = parseLines(path);
    expect(events.map((event) => event.requestID ?? event.eventName)).toEqual(['after-1', 'after-2', 'AuditLogReopened']);
    expect(events[2]).toMatchObject({ eventType: 'ServiceEvent', serviceEventDetails: { reason: 'renamed', detectedBy: 'write' } });
    expectContinues(`${path}.1`, path);
    await expect(verifyAuditLogs([`${path}.1`, path])).resolves.toMatchObject({ ok: true, events: 4 });
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('deleted: nothing is written to the unlinked file; the chain goes on in a new file', async () => {
    const dir = tempDir();
    const path = join(dir, 'audit.log');
    const log = AuditLog.open({ destination: path });
    await log.write(sampleInput({ requestID: 'before' }));
    const held = openSync(path, 'r'); // to see the deleted inode afterwards
    const sizeBefore = fstatSync(held).size;
    const head = log.chainHead()!;
    unlinkSync(path);

    await log.write(sampleInput({ requestID: 'after' }));
    await log.close();

    const events = parseLines(path);
    expect(events[0]).toMatchObject({ requestID: 'after', sequence: head.sequence + 1, previousHash: head.hash });
    expect(events[1]).toMatchObject({ eventName: 'AuditLogReopened', serviceEventDetails: { reason: 'deleted', detectedBy: 'write' } });
    expect(fstatSync(held).size).toBe(sizeBefore); // the deleted inode got nothing more
    closeSync(held);
    expect(readFileSync(path, 'utf8')).not.toContain('"requestID":"before"');
    // The file alone starts mid-chain: verified from the head the deleted file ended at.
    await expect(verifyAuditLogs([path], { after: head })).resolves.toMatchObject({ ok: true, events: 2 });
  });

  it('with logrotate `create`: the empty file already at the path is the one written', async () => {
    const dir = tempDir();
    const path = join(dir, 'audit.log');
    const log = AuditLog.open({ destination: path });
    await log.write(sampleInput());
    renameSync(path, `${path}.1`);
    writeFileSync(path, '', { mode: 0o600 });
    const created = statSync(path).ino;

    await log.write(sampleInput());
    await log.close();
    expect(statSync(path).ino).toBe(created);
    expectContinues(`${path}.1`, path);
  });

  it('reopen() (SIGUSR2) starts the new file at once with AuditLogReopened; a no-op when nothing moved', async () => {
    const dir = tempDir();
    const path = join(dir, 'audit.log');
    const log = AuditLog.open({ destination: path });
    await log.write(sampleInput());
    expect(log.reopen()).toBeNull();
    expect(readLines(path)).toHaveLength(1);

    renameSync(path, `${path}.1`);
    expect(log.reopen()).toBe('renamed');
    expect(parseLines(path)).toMatchObject([
      { eventName: 'AuditLogReopened', serviceEventDetails: { reason: 'renamed', detectedBy: 'signal' } },
    ]);
    expectContinues(`${path}.1`, path);
    expect(log.chainHead()).toEqual({ sequence: 1, hash: sha256(readLines(path)[0]!) });
    await log.close();
  });

  it('a restart after a rotation continues the chain from the new file', async () => {
    const dir = tempDir();
    const path = join(dir, 'audit.log');
    await writeEvents(path, 2);
    const first = AuditLog.open({ destination: path });
    await first.write(sampleInput());
    renameSync(path, `${path}.2`);
    first.reopen();
    await first.close();
    const second = AuditLog.open({ destination: path });
    await second.write(sampleInput());
    renameSync(path, `${path}.1`);
    await second.write(sampleInput());
    await second.close();

    const result = await verifyAuditLogs([`${path}.2`, `${path}.1`, path]);
    expect(result).toMatchObject({ ok: true, events: 7, resumptions: [] });
  });
});

describe('readiness and failures while following the path', () => {
  it('isWritable() follows a rotation that happened while idle, so /readyz never vouches for an unlinked file', async () => {
    const dir = tempDir();
    const path = join(dir, 'audit.log');
    const log = AuditLog.open({ destination: path });
    await log.write(sampleInput());
    unlinkSync(path);

    expect(log.isWritable()).toBe(true);
    expect(parseLines(path)).toMatchObject([{ eventName: 'AuditLogReopened', serviceEventDetails: { reason: 'deleted', detectedBy: 'readiness' } }]);
    await log.close();
  });

  it('when the path cannot be reopened: writes fail closed, readiness is false, and both recover by themselves', async () => {
    const dir = tempDir();
    const path = join(dir, 'audit.log');
    const log = AuditLog.open({ destination: path });
    await log.write(sampleInput({ requestID: 'first' }));
    renameSync(path, `${path}.1`);
    mkdirSync(path); // something that is not a file now sits at the path
    const rotatedSize = sizeOf(`${path}.1`);

    expect(log.isWritable()).toBe(false);
    await expect(log.write(sampleInput({ requestID: 'refused' }))).rejects.toThrow(AuditWriteError);
    expect(() => log.reopen()).toThrow(/cannot reopen audit log/);
    expect(sizeOf(`${path}.1`)).toBe(rotatedSize); // never the renamed file instead

    rmdirSync(path);
    await new Promise((resolve) => setTimeout(resolve, 1100)); // the recovery probe runs at most once a second
    expect(log.isWritable()).toBe(true);
    await log.write(sampleInput({ requestID: 'later' }));
    await log.close();
    const names = parseLines(path).map((event) => event.requestID ?? event.eventName);
    expect(names).toEqual(['AuditSinkRecovered', 'AuditLogReopened', 'later']);
    expect(readFileSync(path, 'utf8')).not.toContain('refused');
    await expect(verifyAuditLogs([`${path}.1`, path])).resolves.toMatchObject({ ok: true });
  });

  it('refuses to continue the chain into a file that is not empty and is not its continuation', async () => {
    const dir = tempDir();
    const path = join(dir, 'audit.log');
    const log = AuditLog.open({ destination: path });
    await log.write(sampleInput());
    renameSync(path, `${path}.1`);
    writeFileSync(path, '{"someone":"else"}\n');

    await expect(log.write(sampleInput())).rejects.toThrow(/do not end where this log's chain stands/);
    expect(readFileSync(path, 'utf8')).toBe('{"someone":"else"}\n');
    expect(log.isWritable()).toBe(false);
    unlinkSync(path);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await log.write(sampleInput());
    await log.close();
    await expect(verifyAuditLogs([`${path}.1`, path])).resolves.toMatchObject({ ok: true });
  });
});

describe('audit:verify over a rotated set', () => {
  /** Three files of one log: audit.log.2 (oldest), audit.log.1, audit.log. */
  async function rotatedSet(): Promise<string> {
    const path = join(tempDir(), 'audit.log');
    const log = AuditLog.open({ destination: path });
    for (const suffix of ['.2', '.1']) {
      await log.write(sampleInput());
      await log.write(sampleInput());
      renameSync(path, `${path}${suffix}`);
      log.reopen();
    }
    await log.write(sampleInput());
    await log.close();
    return path;
  }

  it('passes in order and detects a missing file, a wrong order, and a cut file', async () => {
    const path = await rotatedSet();
    await expect(verifyAuditLogs([`${path}.2`, `${path}.1`, path])).resolves.toMatchObject({ ok: true, events: 7 });

    const missing = await verifyAuditLogs([`${path}.2`, path]);
    expect(missing).toMatchObject({ ok: false, problem: 'gap', file: path, line: 1 });
    expect((missing as { message: string }).message).toBe(
      `gap between ${path}.2 (last sequence 1) and ${path} (first sequence 5): 3 event(s) missing: a rotated file is missing or was cut short`,
    );

    // Older files after newer ones: a new chain where a continuation was due, or going backwards.
    await expect(verifyAuditLogs([`${path}.1`, `${path}.2`, path], { after: 'any' })).resolves.toMatchObject({ ok: false, problem: 'gap' });
    await expect(verifyAuditLogs([path, `${path}.1`], { after: 'any' })).resolves.toMatchObject({ ok: false, problem: 'reordered' });

    const middle = readLines(`${path}.1`);
    writeFileSync(`${path}.1`, `${middle.slice(0, -1).join('\n')}\n`); // its last line removed
    await expect(verifyAuditLogs([`${path}.2`, `${path}.1`, path])).resolves.toMatchObject({ ok: false, problem: 'gap', file: path });
  });

  it('verifies from a given head when the oldest files are gone, and reads .gz files', async () => {
    const path = await rotatedSet();
    const older = await verifyAuditLogs([`${path}.2`]);
    expect(older.ok).toBe(true);
    const head = (older as { head: { sequence: number; hash: string } }).head;
    writeFileSync(`${path}.1.gz`, gzipSync(readFileSync(`${path}.1`)));
    unlinkSync(`${path}.1`);

    await expect(verifyAuditLogs([`${path}.1.gz`, path])).resolves.toMatchObject({ ok: false, problem: 'bad-start' });
    await expect(verifyAuditLogs([`${path}.1.gz`, path], { after: head })).resolves.toMatchObject({ ok: true, events: 5 });
    await expect(verifyAuditLogs([`${path}.1.gz`, path], { after: { ...head, sequence: head.sequence - 1 } })).resolves.toMatchObject({
      ok: false,
      problem: 'bad-start',
    });
    await expect(verifyAuditLogs([`${path}.1.gz`, path], { after: 'any' })).resolves.toMatchObject({ ok: true, startsAfter: head });
  });

  it('the CLI takes the files in order, or a shell glob with --sort, and names the file that breaks', async () => {
    const path = await rotatedSet();
    const out: string[] = [];
    const err: string[] = [];
    const output = { out: (text: string) => out.push(text), err: (text: string) => err.push(text) };

    expect(await main([`${path}.2`, `${path}.1`, path], output)).toBe(0);
    expect(out.at(-1)).toMatch(/^OK: 7 events, chain intact\nhead: sequence 6, sha256 [0-9a-f]{64}$/);
    // A glob sorts audit.log, audit.log.1, audit.log.2: --sort puts them oldest first.
    expect(await main(['--sort', path, `${path}.1`, `${path}.2`], output)).toBe(0);
    expect(await main([path, `${path}.1`, `${path}.2`], output)).toBe(1);
    expect(err.at(-1)).toMatch(/the chain starts at sequence 5, not 0/);
    expect(await main(['--after=any', path, `${path}.1`], output)).toBe(1);
    expect(err.at(-1)).toMatch(new RegExp(`^FAIL: ${path}\\.1 does not follow ${path}: sequence 2 after 6`));
    expect(await main(['--sort', path, join(tempDir(), 'other.log')], output)).toBe(2);
    expect(await main([path, path], output)).toBe(2);
  });
});
