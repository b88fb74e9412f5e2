/**
 * The application log's lines dropped because stdout did not keep up.
 *
 * The app log writes to stdout asynchronously, queueing what it cannot write yet. Behind a reader
 * that stalls (a log shipper down, a full pipe) that queue would grow with every request until
 * the process runs out of memory: a load any caller can drive takes the replica out. So the
 * queue has a bound (LOG_BUFFER_MAX_BYTES), and a line that would pass it is dropped and counted
 * here. The audit log is unaffected: it writes to its own destination, synchronously, and a
 * request whose audit event cannot be written fails closed.
 *
 * Once the queue has emptied, one warning line says how many lines went missing, so the gap
 * is visible in the log itself as well as in app_log_dropped_lines_total.
 */
import type { Logger } from 'pino';

/** What a bounded stdout destination reports (sonic-boom's events). */
export interface DroppingStream {
  on(event: 'drop', listener: (line: string) => void): unknown;
  once(event: 'drain', listener: () => void): unknown;
}

export class AppLogDrops {
  /** Lines dropped since the process started. */
  lines = 0;
  private sinceReport = 0;

  /** `logger` writes to `stream`: it reports the count once the queue has emptied. */
  constructor(
    private readonly stream: DroppingStream,
    private readonly logger: Logger,
  ) {
    stream.on('drop', () => this.dropped());
  }

  private dropped(): void {
    this.lines++;
    // The first drop of an episode arms one report; the next drops only add to its count.
    if (this.sinceReport++ === 0) this.stream.once('drain', () => this.report());
  }

  private report(): void {
    const dropped = this.sinceReport;
    this.sinceReport = 0;
    this.logger.warn({ droppedLines: dropped }, 'app log lines dropped: stdout did not keep up (LOG_BUFFER_MAX_BYTES reached)');
  }
}

const dropsByLogger = new WeakMap<Logger, AppLogDrops>();

export function trackAppLogDrops(logger: Logger, stream: DroppingStream): AppLogDrops {
  const drops = new AppLogDrops(stream, logger);
  dropsByLogger.set(logger, drops);
  return drops;
}

/** The drop count of a logger createAppLogger made for stdout; undefined for any other logger. */
export function appLogDrops(logger: Logger): AppLogDrops | undefined {
  return dropsByLogger.get(logger);
}
