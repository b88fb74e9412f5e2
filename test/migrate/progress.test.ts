/** The terminal progress line: what an operator watching a batch sees, and its last state. */
import { describe, expect, it } from 'vitest';
import { terminalProgress } from '../../src/migrate/progress.js';

describe('terminal progress', () => {
  it('redraws one line with files, bytes and outcomes, and ends it with a newline', () => {
    const writes: string[] = [];
    const stream = { write: (text: string) => writes.push(text) } as unknown as NodeJS.WriteStream;
    const progress = terminalProgress(stream);
    progress.start(3, 3_000_000);
    progress.bytes(1_000_000);
    progress.fileDone('migrated');
    progress.bytes(1_000_000);
    progress.fileDone('skipped');
    progress.bytes(1_000_000);
    progress.fileDone('failed');
    progress.stop();
    expect(writes.every((text) => text.startsWith('\r') || text === '\n')).toBe(true);
    const last = writes.at(-2) ?? '';
    expect(last).toContain('[##############################]');
    expect(last).toContain('3/3 files, 3.0/3.0 MB');
    expect(last).toContain('(1 migrated, 1 skipped, 1 failed)');
    expect(writes.at(-1)).toBe('\n');
  });
});
