import { createHash } from 'node:crypto';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { formatVerifyResult, verifyAuditLog, type VerifyResult } from '../../src/verifier/verify.js';
import { readLines, tempDir, writeEvents, writeLines } from '../audit/helpers.js';

const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/** 10 events; tests tamper with a copy of its lines. */
let path: string;
let lines: string[];

beforeEach(async () => {
  path = join(tempDir(), 'audit.log');
  await writeEvents(path, 10);
  lines = readLines(path);
});

function line(number: number): string {
  return lines[number - 1] as string;
}

function failure(result: VerifyResult): { line: number; problem: string; message: string } {
  if (result.ok) throw new Error(`expected a failure, got ${formatVerifyResult(result)}`);
  return { line: result.line, problem: result.problem, message: result.message };
}

describe('verify: intact logs', () => {
  it('reports OK with the event count and the chain head', async () => {
    const result = await verifyAuditLog(path);
    expect(result).toEqual({
      ok: true,
      events: 10,
      head: { sequence: 9, hash: sha256(line(10)) },
      resumptions: [],
    });
    expect(formatVerifyResult(result).split('\n')[0]).toBe('OK: 10 events, chain intact');
  });

  it('accepts an empty file', async () => {
    writeFileSync(path, '');
    await expect(verifyAuditLog(path)).resolves.toMatchObject({ ok: true, events: 0, head: null });
  });
});

describe('verify: tampering', () => {
  it('names a modified line (detected through the next line, confirmed by the one after)', async () => {
    lines[4] = line(5).replace('"httpStatus":200', '"httpStatus":201');
    writeLines(path, lines);
    const result = failure(await verifyAuditLog(path));
    expect(result).toMatchObject({ line: 5, problem: 'modified' });
    expect(result.message).toBe('line 5 was modified: its hash no longer matches the previousHash recorded in line 6');
  });

  it('catches a change invisible to JSON (a carriage return before the newline)', async () => {
    lines[2] = `${line(3)}\r`;
    writeLines(path, lines);
    expect(failure(await verifyAuditLog(path))).toMatchObject({ line: 3, problem: 'modified' });
  });

  it('names a line whose sequence was edited', async () => {
    lines[3] = line(4).replace('"sequence":3', '"sequence":7');
    writeLines(path, lines);
    const result = failure(await verifyAuditLog(path));
    expect(result).toMatchObject({ line: 4, problem: 'modified' });
    expect(result.message).toContain('expected 3');
  });

  it('names a line whose previousHash was edited', async () => {
    lines[5] = line(6).replace(/"previousHash":"[0-9a-f]{64}"/, `"previousHash":"${'a'.repeat(64)}"`);
    writeLines(path, lines);
    expect(failure(await verifyAuditLog(path))).toMatchObject({ line: 6, problem: 'modified' });
  });

  it('names a deleted line (sequence gap)', async () => {
    lines.splice(3, 1); // remove line 4 (sequence 3)
    writeLines(path, lines);
    const result = failure(await verifyAuditLog(path));
    expect(result).toMatchObject({ line: 4, problem: 'deleted' });
    expect(result.message).toBe('1 event(s) deleted before line 4: sequence jumps from 2 (line 3) to 4');
  });

  it('counts several deleted lines', async () => {
    lines.splice(3, 3);
    writeLines(path, lines);
    expect(failure(await verifyAuditLog(path)).message).toMatch(/^3 event\(s\) deleted before line 4/);
  });

  it('names lines deleted from the start of the file', async () => {
    writeLines(path, lines.slice(2));
    const result = failure(await verifyAuditLog(path));
    expect(result).toMatchObject({ line: 1, problem: 'bad-start' });
    expect(result.message).toContain('2 event(s) deleted from the start');
  });

  it('names an inserted line (a copy of another event)', async () => {
    lines.splice(6, 0, line(2)); // new line 7
    writeLines(path, lines);
    const result = failure(await verifyAuditLog(path));
    expect(result).toMatchObject({ line: 7, problem: 'inserted' });
    expect(result.message).toBe('line 7 was inserted: line 8 continues the chain from line 6');
  });

  it('names an inserted line forged with a correct previousHash and sequence', async () => {
    const forged = JSON.parse(line(6)) as Record<string, unknown>;
    forged.requestID = 'forged';
    forged.previousHash = sha256(line(6));
    forged.sequence = 6;
    lines.splice(6, 0, JSON.stringify(forged)); // new line 7 links perfectly to line 6
    writeLines(path, lines);
    expect(failure(await verifyAuditLog(path))).toMatchObject({ line: 7, problem: 'inserted' });
  });

  it('names two swapped lines', async () => {
    [lines[4], lines[5]] = [line(6), line(5)];
    writeLines(path, lines);
    const result = failure(await verifyAuditLog(path));
    expect(result).toMatchObject({ line: 5, problem: 'reordered' });
    expect(result.message).toBe('lines 5 and 6 are swapped: sequence 5 comes before 4');
  });

  it('names swapped last two lines', async () => {
    [lines[8], lines[9]] = [line(10), line(9)];
    writeLines(path, lines);
    expect(failure(await verifyAuditLog(path))).toMatchObject({ line: 9, problem: 'reordered' });
  });

  it('names an unparseable line', async () => {
    lines[2] = 'not json at all';
    writeLines(path, lines);
    const result = failure(await verifyAuditLog(path));
    expect(result).toMatchObject({ line: 3, problem: 'unparseable' });
    expect(result.message).toMatch(/^line 3 is not a valid audit event \(not JSON/);
  });

  it('names a JSON line without chain fields', async () => {
    lines[2] = '{"eventName":"Encrypt"}';
    writeLines(path, lines);
    expect(failure(await verifyAuditLog(path))).toMatchObject({ line: 3, problem: 'unparseable' });
  });

  it('cannot tell which end of the link changed when it is the last line', async () => {
    lines[9] = line(10).replace(/"previousHash":"[0-9a-f]{64}"/, `"previousHash":"${'b'.repeat(64)}"`);
    writeLines(path, lines);
    const result = failure(await verifyAuditLog(path));
    expect(result).toMatchObject({ line: 10, problem: 'link-broken' });
    expect(result.message).toContain('line 9 was modified, or line 10');
  });

  it('fails on an incomplete last line (interrupted write, service not restarted yet)', async () => {
    appendFileSync(path, '{"eventVersion":"1.0","eventTi');
    const result = failure(await verifyAuditLog(path));
    expect(result).toMatchObject({ line: 11, problem: 'incomplete' });
  });

  it('fails on an over-long line instead of buffering it', async () => {
    appendFileSync(path, `${'x'.repeat(5000)}\n`);
    expect(failure(await verifyAuditLog(path, { maxLineBytes: 4096 }))).toMatchObject({ line: 11, problem: 'too-long' });
  });

  it('rejects an AuditChainResumed that does not link to the damaged line', async () => {
    await writeEvents(path, 0);
    appendFileSync(path, 'garbage\n');
    await writeEvents(path, 1); // writes AuditChainResumed linking to "garbage"
    const tampered = readLines(path);
    tampered[10] = 'other garbage';
    writeLines(path, tampered);
    expect(failure(await verifyAuditLog(path))).toMatchObject({ line: 11, problem: 'unparseable' });
  });

  it('documented limit: removing lines from the end is not detectable from the file alone', async () => {
    writeLines(path, lines.slice(0, 7));
    const result = await verifyAuditLog(path);
    expect(result).toMatchObject({ ok: true, events: 7 });
    // ...but the head differs from the one the service reported: that is what an external anchor is for.
    expect(result.ok && result.head?.hash).not.toBe(sha256(line(10)));
  });
});

describe('verify: against an anchor published elsewhere', () => {
  it('passes when the anchored event is present with its hash', async () => {
    await expect(verifyAuditLog(path, { anchor: { sequence: 7, hash: sha256(line(8)) } })).resolves.toMatchObject({ ok: true });
  });

  it('detects a truncated tail', async () => {
    writeLines(path, lines.slice(0, 7));
    const result = failure(await verifyAuditLog(path, { anchor: { sequence: 9, hash: sha256(line(10)) } }));
    expect(result).toMatchObject({ problem: 'truncated', line: 8 });
    expect(result.message).toContain('last sequence 6');
  });

  it('detects a tail rewritten with recomputed hashes', async () => {
    const rewritten = lines.slice(0, 8);
    const forged = JSON.parse(line(9)) as Record<string, unknown>;
    forged.httpStatus = 403; // line 9 rewritten, and line 10 re-chained to it
    rewritten.push(JSON.stringify(forged));
    const next = JSON.parse(line(10)) as Record<string, unknown>;
    next.previousHash = sha256(rewritten[8] as string);
    rewritten.push(JSON.stringify(next));
    writeLines(path, rewritten);
    await expect(verifyAuditLog(path)).resolves.toMatchObject({ ok: true }); // the file alone cannot tell
    const result = failure(await verifyAuditLog(path, { anchor: { sequence: 9, hash: sha256(line(10)) } }));
    expect(result).toMatchObject({ problem: 'anchor-mismatch', line: 10 });
  });
});

describe('verify: resumed segments', () => {
  beforeEach(async () => {
    appendFileSync(path, '{"eventVersion":"1.0","eve'); // crash mid-write
    await writeEvents(path, 2); // restart: AuditChainResumed + 2 events
  });

  it('accepts a resumption and reports it as a warning', async () => {
    const result = await verifyAuditLog(path);
    expect(result).toMatchObject({ ok: true, events: 13, resumptions: [{ line: 12, damagedLine: 11, reason: 'partial-last-line' }] });
    const report = formatVerifyResult(result);
    expect(report).toContain('OK: 13 events, chain intact');
    expect(report).toContain('WARNING: line 12: chain resumed after damaged line 11 (partial-last-line)');
  });

  it('fails a resumption in strict mode', async () => {
    const result = failure(await verifyAuditLog(path, { strict: true }));
    expect(result).toMatchObject({ line: 12, problem: 'resumed' });
  });

  it('still detects tampering after a resumption', async () => {
    const tampered = readLines(path);
    tampered[12] = (tampered[12] as string).replace('"httpStatus":200', '"httpStatus":500');
    writeLines(path, tampered);
    // line 13 modified; line 14 is the last, so the break is reported at the link
    expect(failure(await verifyAuditLog(path))).toMatchObject({ line: 14, problem: 'link-broken' });
  });

  it('leaves the damaged bytes in place', () => {
    expect(readFileSync(path, 'utf8')).toContain('{"eventVersion":"1.0","eve\n');
  });
});
