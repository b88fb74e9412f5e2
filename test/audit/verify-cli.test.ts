import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/audit/verify-cli.js';
import { readLines, tempDir, writeEvents, writeLines } from './helpers.js';

/** Runs the CLI exactly as `npm run audit:verify -- ...` does (tsx), in a child process. */
function runCli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/audit/verify-cli.ts', ...args], {
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
