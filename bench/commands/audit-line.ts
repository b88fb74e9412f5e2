/**
 * `npm run bench:audit-line` (bench/main.ts audit-line): what serializing one audit event costs,
 * in-process, side by side: JSON.stringify of the record (the floor of any serializer), pino's
 * general serializer configured as the audit log once was (a level formatter writing
 * eventVersion, the redaction backstop as `formatters.log`), and the audit log's own logger
 * (src/audit/audit-log.ts, createAuditLogger: one JSON.stringify after the backstop). Then
 * AuditLog.write end to end (chain, serializer, group commit to a file) at 4 events per
 * event-loop turn, about what a loaded replica sees. The service's modules are the tsc build's.
 * Prints the median µs per event over interleaved rounds; asserts nothing.
 *
 *   --duration <s>   measured seconds per step (default 1.5), shared out over the rounds
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { ENCRYPT_AUDIT_INPUT } from '../lib/audit-input.js';
import { measureOps } from '../lib/ops.js';
import { importBuilt } from '../lib/server-build.js';

const ROUNDS = 7;
const PER_TURN = 4;

/** The record AuditLog.write builds from ENCRYPT_AUDIT_INPUT (eventVersion first, the chain's fields last). */
const RECORD = {
  eventVersion: '1.0',
  eventTime: '2026-01-01T00:00:00.000Z',
  eventID: '27fcbc7d-4f18-4705-9bc8-ab6e63c9dc43',
  eventSource: 'envelope-service',
  eventName: ENCRYPT_AUDIT_INPUT.eventName,
  eventType: 'ApiCall',
  userIdentity: ENCRYPT_AUDIT_INPUT.userIdentity,
  sourceIPAddress: ENCRYPT_AUDIT_INPUT.sourceIPAddress,
  userAgent: ENCRYPT_AUDIT_INPUT.userAgent,
  requestID: ENCRYPT_AUDIT_INPUT.requestID,
  httpStatus: ENCRYPT_AUDIT_INPUT.httpStatus,
  errorCode: undefined,
  errorMessage: undefined,
  requestParameters: ENCRYPT_AUDIT_INPUT.requestParameters,
  responseElements: ENCRYPT_AUDIT_INPUT.responseElements,
  additionalEventData: ENCRYPT_AUDIT_INPUT.additionalEventData,
  sequence: 123_456,
  previousHash: '9f'.repeat(32),
};

export async function auditLine(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { duration: { type: 'string', default: '1.5' } } });
  const durationMs = Number(values.duration) * 1000;
  if (!(durationMs > 0 && durationMs <= 60_000)) throw new Error('--duration must be in (0, 60]');
  const { AuditLog, createAuditLogger } = await importBuilt<typeof import('../../src/audit/audit-log.js')>('src/audit/audit-log.js');
  const { censorSecretFields } = await importBuilt<typeof import('../../src/audit/redaction.js')>('src/audit/redaction.js');

  const discard = { write: (): void => undefined };
  const { eventVersion, ...fields } = RECORD;
  /** pino's general serializer as the audit log was configured before createAuditLogger. */
  const generalPinoOver = (destination: { write: (line: string) => void }) =>
    pino({ level: 'info', base: null, timestamp: false, formatters: { level: () => ({ eventVersion }), log: censorSecretFields } }, destination);
  const generalPino = generalPinoOver(discard);
  const ours = createAuditLogger(discard);
  const same = (): boolean => {
    const lines: string[] = [];
    const capture = { write: (line: string) => void lines.push(line) };
    generalPinoOver(capture).info(fields);
    createAuditLogger(capture).info(RECORD);
    return lines[0] === lines[1];
  };

  const dir = mkdtempSync(join(tmpdir(), 'bench-audit-line-'));
  const audit = AuditLog.open({ destination: join(dir, 'audit.log') });
  try {
    const steps: Array<{ label: string; op: () => unknown; perOp?: number }> = [
      { label: 'JSON.stringify of the record (the floor)', op: () => JSON.stringify(RECORD) },
      { label: "pino's general serializer, level formatter + formatters.log", op: () => generalPino.info(fields) },
      { label: 'the audit logger (createAuditLogger)', op: () => ours.info(RECORD) },
      {
        label: `AuditLog.write end to end, ${PER_TURN} events per turn, to a file`,
        perOp: PER_TURN,
        op: () => Promise.all(Array.from({ length: PER_TURN }, () => audit.write(ENCRYPT_AUDIT_INPUT))),
      },
    ];
    process.stdout.write(`one audit event, in-process (median of ${ROUNDS} interleaved rounds); the two loggers write the same line: ${same()}\n`);
    for (const step of steps) await measureOps(step.op, durationMs / 5, durationMs / 10);
    const samples = steps.map((): number[] => []);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, step] of steps.entries()) samples[i]!.push((await measureOps(step.op, 0, durationMs / ROUNDS)).meanUs / (step.perOp ?? 1));
    }
    for (const [i, step] of steps.entries()) {
      const median = samples[i]!.sort((a, b) => a - b)[ROUNDS >> 1]!;
      process.stdout.write(`  ${step.label.padEnd(66)} ${median.toFixed(2).padStart(7)} µs\n`);
    }
  } finally {
    await audit.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return 0;
}
