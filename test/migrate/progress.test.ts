/** The progress bar on a terminal: what an operator watching a batch sees at its end. */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { terminalProgress } from '../../src/client/migrate/progress.js';

describe('migrate progress bar', () => {
  it('shows MiB, files and outcomes, and its last state stays on screen', () => {
    let screen = '';
    const tty = Object.assign(
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          screen += chunk.toString();
          callback();
        },
      }),
      { isTTY: true, columns: 200, cursorTo: () => true, clearLine: () => true, moveCursor: () => true },
    );
    const progress = terminalProgress(tty as unknown as NodeJS.WritableStream);
    const MIB = 1024 * 1024;
    progress.start(3, 3 * MIB);
    progress.bytes(MIB);
    progress.fileDone('migrated');
    progress.bytes(MIB);
    progress.fileDone('skipped');
    progress.bytes(MIB);
    progress.fileDone('failed');
    progress.stop();
    expect(screen).toContain('100% | 3/3 MiB | 3/3 files: 1 migrated, 1 skipped, 1 failed');
  });
});
