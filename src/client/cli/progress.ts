/**
 * A progress bar on stderr (cli-progress) for large files, only when stderr is a terminal: a
 * script's stderr stays clean.
 */
import cliProgress from 'cli-progress';

/** Files below this size get no bar. */
export const PROGRESS_MIN_BYTES = 8 * 1024 * 1024;

export interface Progress {
  tick(bytes: number): void;
  stop(): void;
}

const NONE: Progress = { tick: () => undefined, stop: () => undefined };

export function progressFor(label: string, totalBytes: number | undefined, stderr: NodeJS.WritableStream & { isTTY?: boolean }): Progress {
  if (!stderr.isTTY || totalBytes === undefined || totalBytes < PROGRESS_MIN_BYTES) return NONE;
  const bar = new cliProgress.SingleBar(
    {
      stream: stderr,
      format: `${label} [{bar}] {percentage}% | {value}/{total} MiB | {eta}s`,
      hideCursor: true,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  const mib = (bytes: number) => Math.round(bytes / 1048576);
  let done = 0;
  bar.start(mib(totalBytes), 0);
  return {
    tick(bytes) {
      done += bytes;
      bar.update(mib(done));
    },
    stop() {
      bar.stop();
    },
  };
}
