import { closeSync, fstatSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GENESIS_HASH, hashLine } from '../../src/audit/chain.js';
import { resumeChain, type ChainStart } from '../../src/audit/resume.js';
import { readTail } from '../../src/audit/tail.js';
import { tempDir } from './helpers.js';

const event = (sequence: number, padding = ''): string =>
  JSON.stringify({ eventName: 'Encrypt', padding, sequence, previousHash: 'a'.repeat(64) });

function withFile<T>(content: string, action: (fd: number, size: number) => T): T {
  const path = join(tempDir(), 'audit.log');
  writeFileSync(path, content);
  const fd = openSync(path, 'r');
  try {
    return action(fd, fstatSync(fd).size);
  } finally {
    closeSync(fd);
  }
}

const resume = (content: string, initialWindowBytes = 64, maxWindowBytes = 4096): ChainStart =>
  withFile(content, (fd, size) => resumeChain(fd, size, { initialWindowBytes, maxWindowBytes }));

describe('readTail', () => {
  it('returns only whole lines inside the window', () => {
    const tail = withFile('first line\nsecond\nthird\n', (fd, size) => readTail(fd, size, 13)); // "second\nthird\n": "second" may be cut
    expect(tail).toEqual({ lines: [Buffer.from('third')], terminated: true, reachedStart: false });
  });

  it('keeps the first line when the window reaches the start', () => {
    const tail = withFile('one\ntwo', (fd, size) => readTail(fd, size, 1000));
    expect(tail.lines.map(String)).toEqual(['one', 'two']);
    expect(tail).toMatchObject({ terminated: false, reachedStart: true });
  });
});

describe('resumeChain', () => {
  it('starts a new chain in an empty file', () => {
    expect(resume('')).toEqual({ kind: 'genesis', link: { sequence: 0, previousHash: GENESIS_HASH } });
  });

  it('continues after a valid last line, growing the window for a long one', () => {
    const last = event(41, 'p'.repeat(500));
    expect(resume(`${event(40)}\n${last}\n`)).toEqual({
      kind: 'continue',
      link: { sequence: 42, previousHash: hashLine(Buffer.from(last)) },
    });
  });

  it('finds the last valid sequence before a damaged line, even further back than the first window', () => {
    const garbage = 'g'.repeat(300);
    const start = resume(`${event(6)}\n${event(7, 'p'.repeat(200))}\n${garbage}\n`);
    expect(start).toMatchObject({
      kind: 'resume',
      link: { sequence: 8, previousHash: hashLine(Buffer.from(garbage)) },
      details: { reason: 'unparseable-last-line', lastValidSequence: 7, lastLineBytes: 300 },
      terminatePartialLine: false,
    });
  });

  it('treats a file ending in an empty line as damaged', () => {
    expect(resume(`${event(0)}\n\n`)).toMatchObject({
      kind: 'resume',
      link: { sequence: 1, previousHash: hashLine(Buffer.alloc(0)) },
      details: { reason: 'unparseable-last-line' },
    });
  });

  it('reads at most maxWindowBytes: a longer last line is reported, not loaded', () => {
    expect(resume(`${event(0)}\n${'x'.repeat(10_000)}`, 64, 1024)).toEqual({
      kind: 'resume',
      link: { sequence: 0, previousHash: GENESIS_HASH },
      details: { reason: 'last-line-too-long', lastLineHash: null, lastLineBytes: null, lastValidSequence: null },
      terminatePartialLine: true,
    });
  });

  it('resumes at sequence 0 when no valid event is found at all', () => {
    expect(resume('garbage\nmore garbage')).toMatchObject({
      kind: 'resume',
      link: { sequence: 0 },
      details: { reason: 'partial-last-line', lastValidSequence: null },
      terminatePartialLine: true,
    });
  });
});
