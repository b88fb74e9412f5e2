/**
 * The batch's progress bar on a terminal (cli-progress, as the other subcommands): plaintext
 * MiB done of the batch's total, files done, and the outcomes so far. Only when stderr is a
 * TTY; a script's log gets the summary alone.
 */
import cliProgress from 'cli-progress';
import type { BatchProgress } from './migrate-batch.js';
import type { MigrationStatus } from './report.js';

const MIB = 1024 * 1024;

export function terminalProgress(stream: NodeJS.WritableStream): BatchProgress {
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: 'migrate [{bar}] {percentage}% | {value}/{total} MiB | {filesDone}/{files} files: {migrated} migrated, {skipped} skipped, {failed} failed | {eta}s',
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  const counts: Record<MigrationStatus, number> = { migrated: 0, skipped: 0, failed: 0 };
  let bytes = 0;
  let filesDone = 0;
  const payload = () => ({ filesDone, ...counts });
  return {
    start(files, totalBytes) {
      bar.start(Math.max(1, Math.round(totalBytes / MIB)), 0, { files, ...payload() });
    },
    bytes(count) {
      bytes += count;
      bar.update(Math.round(bytes / MIB), payload());
    },
    fileDone(status) {
      filesDone++;
      counts[status]++;
      bar.update(Math.round(bytes / MIB), payload());
    },
    stop() {
      bar.update(Math.round(bytes / MIB), payload());
      bar.stop();
    },
  };
}
