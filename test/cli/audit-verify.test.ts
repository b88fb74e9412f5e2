import { spawnSync } from 'node:child_process';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/audit-verify.js';
import { isCheckpoint, localSigner, runVerify, writeSignedLog } from '../audit/checkpoint-helpers.js';
import { readLines, tempDir, writeEvents, writeLines } from '../audit/helpers.js';

/** Runs the CLI exactly as `npm run audit:verify -- ...` does (tsx), in a child process. */
function runCli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/audit-verify.ts', ...args], {
    cwd: join(import.meta.dirname, '..', '..'),
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function capture(): { out: string[]; err: string[]; output: { out: (text: string) => void; err: (text: string) => void } } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, output: { out: (text) => out.push(text), err: (text) => err.push(text) } };
}

describe('audit:verify CLI', () => {
  it('exits 0 with OK for an intact log, 1 naming the line for a tampered one, 2 on usage errors', async () => {
    const path = join(tempDir(), 'audit.log');
    await writeEvents(path, 4);

    const ok = runCli(path);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/^OK: 4 events, chain intact\n/);

    const lines = readLines(path);
    lines.splice(1, 1);
    writeLines(path, lines);
    const bad = runCli(path);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^FAIL: 1 event\(s\) deleted before line 2/);

    const usage = runCli();
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain('usage:');
  });

  it('main(): exit codes and messages in process', async () => {
    const dir = tempDir();
    const path = join(dir, 'audit.log');
    await writeEvents(path, 2);

    let io = capture();
    expect(await main([path], io.output)).toBe(0);
    expect(io.out.join('\n')).toMatch(/^OK: 2 events, chain intact/);

    io = capture();
    expect(await main([join(dir, 'missing.log')], io.output)).toBe(2);
    expect(io.err.join('\n')).toContain('cannot read');

    io = capture();
    expect(await main(['--bogus', path], io.output)).toBe(2);
    expect(io.err.join('\n')).toContain("Unknown option '--bogus'");

    expect(await main([path, path], capture().output)).toBe(2);
    expect(await main(['--help'], capture().output)).toBe(0);

    writeLines(path, [...readLines(path), 'not json']);
    io = capture();
    expect(await main([path], io.output)).toBe(1);
    expect(io.err[0]).toMatch(/^FAIL: line 3 is not a valid audit event/);
  });

  it('--anchor takes SEQUENCE:SHA256 from an earlier head line', async () => {
    const path = join(tempDir(), 'audit.log');
    await writeEvents(path, 3);
    const io = capture();
    expect(await main([path], io.output)).toBe(0);
    const head = /head: sequence (\d+), sha256 ([0-9a-f]{64})/.exec(io.out.join('\n'));
    const anchor = `--anchor=${head?.[1]}:${head?.[2]}`;
    expect(await main([anchor, path], capture().output)).toBe(0);
    writeLines(path, readLines(path).slice(0, 2));
    expect(await main([anchor, path], capture().output)).toBe(1);
    expect(await main(['--anchor=abc', path], capture().output)).toBe(2);
  });

  it('--strict fails on a resumed chain that passes by default', async () => {
    const path = join(tempDir(), 'audit.log');
    await writeEvents(path, 1);
    writeLines(path, [...readLines(path), 'half a li']);
    await writeEvents(path, 1);
    expect(await main([path], capture().output)).toBe(0);
    expect(await main(['--strict', path], capture().output)).toBe(1);
  });
});

/**
 * With --digests the digest file says whose log this must be: replicas share one signing key,
 * so a genuine log of another replica (or no log at all) must not pass for this one's.
 */
describe('audit:verify --digests', () => {
  it("passes the instance's own log, and fails an empty log (exit 3) and another replica's log signed with the same key (exit 4)", async () => {
    const dir = tempDir();
    const { signer, publicKeyPath } = await localSigner(dir);
    const mine = join(dir, 'a.log');
    const theirs = join(dir, 'b.log');
    const digests = join(dir, 'a-digests.jsonl');
    await writeSignedLog(mine, { signer, events: 12, everyEvents: 5, instance: 'node-a', digestFile: digests });
    await writeSignedLog(theirs, { signer, events: 12, everyEvents: 5, instance: 'node-b' });
    const key = `--public-key=${publicKeyPath}`;

    const ok = await runVerify([key, `--digests=${digests}`, mine]);
    expect(ok.err).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/checkpoint\(s\) of instance node-a verify/);

    const emptyLog = join(dir, 'empty.log');
    writeFileSync(emptyLog, '');
    const empty = await runVerify([key, `--digests=${digests}`, emptyLog]);
    expect(empty.code).toBe(3);
    expect(empty.err).toMatch(/^FAIL: the log holds no event: nothing in it is instance node-a's/);

    const other = await runVerify([key, `--digests=${digests}`, theirs]);
    expect(other.code).toBe(4);
    expect(other.err).toMatch(/^FAIL: sequence 5: this is instance node-b's log, not node-a's/);
  });

  it('fails with exit 5 a log that holds none of the digest file\'s checkpoints', async () => {
    const dir = tempDir();
    const { signer, publicKeyPath } = await localSigner(dir);
    const path = join(dir, 'audit.log');
    const digests = join(dir, 'digests.jsonl');
    await writeSignedLog(path, { signer, events: 30, everyEvents: 5, digestFile: digests });
    // An old digest file (its first two checkpoints) against the later part of the log.
    const oldDigests = join(dir, 'old-digests.jsonl');
    writeLines(oldDigests, readLines(digests).slice(0, 2));
    const lines = readLines(path);
    const secondCheckpoint = lines.map((line, index) => (isCheckpoint(line) ? index : -1)).filter((index) => index >= 0)[1] as number;
    const later = join(dir, 'later.log');
    writeLines(later, lines.slice(secondCheckpoint + 1));

    const key = `--public-key=${publicKeyPath}`;
    expect((await runVerify([key, `--digests=${digests}`, '--after=any', later])).code).toBe(0);
    const none = await runVerify([key, `--digests=${oldDigests}`, '--after=any', later]);
    expect(none.code).toBe(5);
    expect(none.err).toMatch(/^FAIL: none of the digest file's 2 checkpoint\(s\) of instance node-a is in the log/);
  });

  it('takes the instance from the digest file; with several instances in it, --instance is required', async () => {
    const dir = tempDir();
    const { signer, publicKeyPath } = await localSigner(dir);
    const a = join(dir, 'a.log');
    const b = join(dir, 'b.log');
    const digests = join(dir, 'digests.jsonl');
    await writeSignedLog(a, { signer, events: 7, everyEvents: 5, instance: 'node-a', digestFile: digests });
    await writeSignedLog(b, { signer, events: 7, everyEvents: 5, instance: 'node-b', digestFile: join(dir, 'b-digests.jsonl') });
    appendFileSync(digests, readFileSync(join(dir, 'b-digests.jsonl')));
    const key = `--public-key=${publicKeyPath}`;

    const ambiguous = await runVerify([key, `--digests=${digests}`, a]);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.err).toContain('the digest file holds checkpoints of several instances (node-a, node-b): give --instance');
    expect((await runVerify([key, `--digests=${digests}`, '--instance=node-a', a])).code).toBe(0);
    expect((await runVerify([key, `--digests=${digests}`, '--instance=node-b', a])).code).toBe(4);
    const unknown = await runVerify([key, `--digests=${digests}`, '--instance=node-c', a]);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('the digest file holds no checkpoint of instance node-c');

    // Replicas: each log is one of the digest file's instances, and every one of them is given.
    const both = await runVerify([key, `--digests=${digests}`, `--replica=${a}`, `--replica=${b}`]);
    expect(both.err).toBe('');
    expect(both.code).toBe(0);
    const emptyLog = join(dir, 'empty.log');
    writeFileSync(emptyLog, '');
    const oneMissing = await runVerify([key, `--digests=${digests}`, `--replica=${a}`, `--replica=${emptyLog}`]);
    expect(oneMissing.code).toBe(3);
    expect(oneMissing.err).toContain('the log holds no event');
    expect(oneMissing.err).toContain('no log given is instance node-b');
  });
});
