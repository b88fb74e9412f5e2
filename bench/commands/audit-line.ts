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
import type { AuditEventInput } from '../../src/audit/event.js';
import { measureOps } from '../lib/ops.js';
import { importBuilt } from '../lib/server-build.js';

const ROUNDS = 7;
const PER_TURN = 4;

/** A 1 KiB encrypt's event, as the HTTP layer hands it over. */
const INPUT: AuditEventInput = {
  eventName: 'Encrypt',
  userIdentity: { type: 'api-key', principalId: 'bench-service', ruleId: 'bench-encrypt' },
  sourceIPAddress: '127.0.0.1',
  userAgent: 'autocannon/7.15.0',
  requestID: '6c2b6a8e-1f0e-4b8e-9a55-0c9a3f1b7d21',
  httpStatus: 200,
  requestParameters: { keyId: 'alias/default', encryptionContext: { tenant: 'bench', purpose: 'bench' }, plaintextBytes: 1024 },
  responseElements: { keyId: 'arn:aws:kms:local:000000000000:key/0e4c1f5e-3d9b-4a3e-9c57-5b1f3f0d2a11', ciphertextBytes: 1488 },
  additionalEventData: {
    dataKeyId: '0123456789abcdef0123456789abcdef',
    cacheHit: true,
    coalesced: false,
    kmsRequestIds: ['d1f9c2a4-6a3e-4bde-8d7e-4b3f3f6f1a0b'],
    decision: 'allow',
  },
};

/** The record AuditLog.write builds from INPUT (eventVersion first, the chain's fields last). */
const RECORD = {
  eventVersion: '1.0',
  eventTime: '2026-01-01T00:00:00.000Z',
  eventID: '27fcbc7d-4f18-4705-9bc8-ab6e63c9dc43',
  eventSource: 'envelope-service',
  eventName: INPUT.eventName,
  eventType: 'ApiCall',
  userIdentity: INPUT.userIdentity,
  sourceIPAddress: INPUT.sourceIPAddress,
  userAgent: INPUT.userAgent,
  requestID: INPUT.requestID,
  httpStatus: INPUT.httpStatus,
  errorCode: undefined,
  errorMessage: undefined,
  requestParameters: INPUT.requestParameters,
  responseElements: INPUT.responseElements,
  additionalEventData: INPUT.additionalEventData,
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
  const generalPino = pino({ level: 'info', base: null, timestamp: false, formatters: { level: () => ({ eventVersion }), log: censorSecretFields } }, discard);
  const ours = createAuditLogger(discard);
  const same = (): boolean => {
    const lines: string[] = [];
    const capture = { write: (line: string) => void lines.push(line) };
    pino({ level: 'info', base: null, timestamp: false, formatters: { level: () => ({ eventVersion }), log: censorSecretFields } }, capture).info(fields);
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
        op: () => Promise.all(Array.from({ length: PER_TURN }, () => audit.write(INPUT))),
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
