/**
 * The audit line is serialized by one JSON.stringify (createAuditLogger), no longer by pino's
 * general serializer. Verifiers, shippers and the hash chain read those bytes: an event must
 * come out byte for byte as pino's general serializer wrote it (its level formatter writing
 * eventVersion, the redaction backstop as formatters.log), whatever the strings hold. One
 * deliberate difference: a lone surrogate in a top-level string, which pino wrote raw (the file
 * then held U+FFFD in its place), is escaped as it always was one level down.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createAuditLogger } from '../../src/audit/audit-log.js';
import { censorSecretFields } from '../../src/audit/redaction.js';

function lineOf(write: (capture: { write: (line: string) => void }) => void): string {
  const lines: string[] = [];
  write({ write: (line) => void lines.push(line) });
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

/** What pino's general serializer wrote for `fields` when it was configured as the audit log. */
function generalLine(fields: Record<string, unknown>): string {
  return lineOf((capture) =>
    pino({ level: 'info', base: null, timestamp: false, formatters: { level: () => ({ eventVersion: '1.0' }), log: censorSecretFields } }, capture).info(fields),
  );
}

function auditLine(fields: Record<string, unknown>): string {
  return lineOf((capture) => createAuditLogger(capture).info({ eventVersion: '1.0', ...fields }));
}

const AWKWARD_STRINGS = [
  '',
  'plain',
  'quote " and backslash \\',
  'controls \u0000\u0001\u0007\b\t\n\u000b\f\r\u001f end',
  'é, ß, 日本語, emoji 🔐',
  'x'.repeat(41),
  'y'.repeat(42),
  `${'long and escaped "'.repeat(20)}\n`,
  '\u2028\u2029 line separators',
];

describe('the audit line', () => {
  it.each(AWKWARD_STRINGS.map((value) => [JSON.stringify(value).slice(0, 40), value] as const))('is byte for byte what pino wrote, string %s', (_name, value) => {
    const fields = {
      eventTime: '2026-01-01T00:00:00.000Z',
      eventName: value,
      userAgent: value,
      userIdentity: { type: 'api-key', principalId: value },
      requestParameters: { keyId: value, encryptionContext: { [value]: value } },
      additionalEventData: { kmsRequestIds: [value, value], items: [{ note: value }] },
      sequence: 7,
      previousHash: 'ab'.repeat(32),
    };
    const line = auditLine(fields);
    expect(line).toBe(generalLine(fields));
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toContain('\n');
  });

  it('is byte for byte what pino wrote for absent, null, numeric and boolean fields, and skips undefined ones', () => {
    const fields = {
      eventTime: '2026-01-01T00:00:00.000Z',
      httpStatus: 503,
      errorCode: undefined,
      errorMessage: undefined,
      requestParameters: null,
      responseElements: null,
      additionalEventData: { cacheHit: false, coalesced: true, decision: undefined, ratio: 0.25, negative: -1, kmsRequestIds: [] },
      notANumber: Number.NaN,
      infinite: Number.POSITIVE_INFINITY,
      sequence: 0,
    };
    const line = auditLine(fields);
    expect(line).toBe(generalLine(fields));
    expect(line).not.toContain('errorCode');
    expect(line).toContain('"notANumber":null');
  });

  it('escapes a lone surrogate in a top-level field as nested fields always were, losing nothing', () => {
    const value = 'lone surrogates \ud800 and \udfff';
    const fields = { errorMessage: value, requestParameters: { keyId: value } };
    const line = auditLine(fields);
    expect(line).toBe(`{"eventVersion":"1.0","errorMessage":"lone surrogates \\ud800 and \\udfff","requestParameters":{"keyId":"lone surrogates \\ud800 and \\udfff"}}\n`);
    expect((JSON.parse(line) as { errorMessage: string }).errorMessage).toBe(value);
    // pino's general serializer wrote the top-level one raw: UTF-8 has no lone surrogate, so the file got U+FFFD.
    expect(Buffer.from(generalLine(fields), 'utf8').includes(Buffer.from('\ufffd', 'utf8'))).toBe(true);
  });

  it('still runs the redaction backstop, as pino did', () => {
    const fields = {
      token: 'top-level-secret',
      requestParameters: { plaintext: 'secret-payload', encryptionContext: { token: 'not-a-secret' } },
      additionalEventData: { items: [{ plaintextKey: 'key-bytes' }] },
    };
    const line = auditLine(fields);
    expect(line).toBe(generalLine(fields));
    expect(line).not.toMatch(/top-level-secret|secret-payload|key-bytes/);
    expect(line).toContain('not-a-secret');
  });
});
