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
