/**
 * The batch's progress on a terminal: one line redrawn at most 10 times a second (files done,
 * bytes, MB/s). Only when stderr is a TTY; a script's log gets the summary alone.
 */
import type { BatchProgress } from './migrate-batch.js';
import type { MigrationStatus } from './report.js';

export function terminalProgress(stream: NodeJS.WriteStream): BatchProgress {
  let files = 0;
  let totalBytes = 0;
  let doneFiles = 0;
  let doneBytes = 0;
  const counts: Record<MigrationStatus, number> = { migrated: 0, skipped: 0, failed: 0 };
  let started = 0;
  let lastDraw = 0;
  const draw = (force: boolean) => {
    const now = Date.now();
    if (!force && now - lastDraw < 100) return;
    lastDraw = now;
    const fraction = totalBytes > 0 ? Math.min(1, doneBytes / totalBytes) : files > 0 ? doneFiles / files : 1;
    const width = 30;
    const filled = Math.round(fraction * width);
    const seconds = Math.max(0.001, (now - started) / 1000);
    const rate = doneBytes / 1e6 / seconds;
    stream.write(
      `\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${doneFiles}/${files} files, ${(doneBytes / 1e6).toFixed(1)}/${(totalBytes / 1e6).toFixed(1)} MB, ${rate.toFixed(1)} MB/s (${counts.migrated} migrated, ${counts.skipped} skipped, ${counts.failed} failed)\x1b[K`,
    );
  };
  return {
    start(fileCount, byteCount) {
      files = fileCount;
      totalBytes = byteCount;
      started = Date.now();
      draw(true);
    },
    bytes(count) {
      doneBytes += count;
      draw(false);
    },
    fileDone(status) {
      doneFiles++;
      counts[status]++;
      draw(doneFiles === files);
    },
    stop() {
      draw(true);
      stream.write('\n');
    },
  };
}
