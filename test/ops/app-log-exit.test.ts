/**
 * The production app log writes to stdout asynchronously (src/logging.ts): lines queued while a
 * write is in flight go out together. What a user relies on is that none is lost when the
 * process ends, by exit or by a crash: pino flushes the queue on the way out. This runs the
 * real logger in a child process whose stdout is a pipe, as in a container.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createAppLogger } from '../../src/logging.js';

const LOGGING = fileURLToPath(new URL('../../src/logging.ts', import.meta.url));
const LINES = 2_000;

/** Runs a child that logs LINES lines in one synchronous burst, then ends as `ending` says. */
async function logThenEnd(ending: 'exit' | 'throw'): Promise<{ code: number | null; lines: string[] }> {
  const script = `
    const { createAppLogger } = await import(${JSON.stringify(LOGGING)});
    const log = createAppLogger({ LOG_LEVEL: 'info' }, { pretty: false });
    for (let i = 0; i < ${LINES}; i++) log.info({ n: i }, 'line');
    ${ending === 'exit' ? 'process.exit(3);' : "throw new Error('crash after logging');"}
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr.resume();
  const code = await new Promise<number | null>((done) => child.on('close', (exitCode) => done(exitCode)));
  return { code, lines: out.split('\n').filter(Boolean) };
}

describe('the app log on stdout', () => {
  it.each(['exit', 'throw'] as const)('keeps every line queued when the process ends by %s', async (ending) => {
    const { code, lines } = await logThenEnd(ending);
    expect(code).toBe(ending === 'exit' ? 3 : 1);
    expect(lines).toHaveLength(LINES);
    expect(lines.map((line) => (JSON.parse(line) as { n: number }).n)).toEqual([...Array(LINES).keys()]);
  }, 30_000);
});

describe('the app log beside an audit log on stdout', () => {
  it('writes synchronously when AUDIT_LOG=stdout, so the two logs never split each other\'s lines', () => {
    const streamOf = (auditLog: string) =>
      (createAppLogger({ LOG_LEVEL: 'info', AUDIT_LOG: auditLog }, { pretty: false }) as unknown as Record<symbol, { sync: boolean }>)[pino.symbols.streamSym]!;
    expect(streamOf('stdout').sync).toBe(true);
    expect(streamOf('/var/log/envelope/audit.log').sync).toBe(false);
  });
});

/**
 * Behind a reader that stalls (a log shipper down, a full pipe), the app log's queue for stdout
 * must not grow with every request until the process runs out of memory: it stops at
 * LOG_BUFFER_MAX_BYTES, and the lines past it are dropped, counted, and reported in one warning
 * once the reader catches up. The child logs over many event-loop turns while the parent does
 * not read its stdout, as a stalled shipper would.
 */
describe('the app log behind a stdout nobody reads', () => {
  const BOUND = 64 * 1024;
  const BURSTS = 100;
  const PER_BURST = 500;

  it('keeps its queue within LOG_BUFFER_MAX_BYTES and accounts for every line it dropped', async () => {
    const script = `
      const { createAppLogger } = await import(${JSON.stringify(LOGGING)});
      const { appLogDrops } = await import(${JSON.stringify(LOGGING.replace(/logging\.ts$/, 'app-log-drops.ts'))});
      const pino = (await import('pino')).default;
      const log = createAppLogger({ LOG_LEVEL: 'info', LOG_BUFFER_MAX_BYTES: ${BOUND} }, { pretty: false });
      const stdout = log[pino.symbols.streamSym];
      let n = 0, mostQueued = 0;
      for (let burst = 0; burst < ${BURSTS}; burst++) {
        for (let i = 0; i < ${PER_BURST}; i++) log.info({ n: n++, reqId: 'req-' + n }, 'request completed');
        mostQueued = Math.max(mostQueued, stdout._len);
        await new Promise((turn) => setTimeout(turn, 1));
      }
      process.send({ mostQueued, dropped: appLogDrops(log).lines }, () => process.disconnect());
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    child.stderr!.resume();
    child.stdout!.pause();
    const report = await new Promise<{ mostQueued: number; dropped: number }>((done) => child.once('message', (m) => done(m as never)));
    // The reader catches up only now.
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.stdout!.resume();
    const code = await new Promise<number | null>((done) => child.on('close', (exitCode) => done(exitCode)));
    expect(code).toBe(0);

    const total = BURSTS * PER_BURST;
    const lines = out.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { n?: number; droppedLines?: number; level: number; msg: string });
    const kept = lines.filter((line) => line.n !== undefined).map((line) => line.n!);
    const warnings = lines.filter((line) => line.droppedLines !== undefined);

    expect(report.mostQueued).toBeLessThanOrEqual(BOUND);
    expect(report.dropped).toBeGreaterThan(0);
    // Nothing is lost silently: every line either arrived whole, in order, or is counted.
    expect(kept).toEqual([...kept].sort((a, b) => a - b));
    expect(kept.length + report.dropped).toBe(total);
    expect(warnings.reduce((sum, line) => sum + line.droppedLines!, 0)).toBe(report.dropped);
    expect(warnings.every((line) => line.level === 40 && /LOG_BUFFER_MAX_BYTES/.test(line.msg))).toBe(true);
  }, 30_000);
});
