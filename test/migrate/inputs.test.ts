/**
 * The migration's inputs: wrapped key files in the forms `aws kms` leaves them, manifests in
 * CSV and JSON lines, and `--context` templates filled from manifest columns.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { columnsOf, fillContext, parseContextTemplate } from '../../src/client/migrate/context-template.js';
import { readManifest } from '../../src/client/migrate/manifest.js';
import { migratedSources, ReportWriter, reportPath } from '../../src/client/migrate/report.js';
import { parseWrappedKey, readWrappedKeyFile } from '../../src/client/migrate/wrapped-key-file.js';

const dir = mkdtempSync(join(tmpdir(), 'migrate-inputs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A binary blob like KMS's: with bytes outside the base64 alphabet. */
const blob = Buffer.concat([Buffer.from([0x01, 0x02, 0x03, 0x00]), randomBytes(180)]);

describe('wrapped key files', () => {
  it('reads raw bytes, base64 text (with its newline) and the JSON answer alike', async () => {
    const raw = join(dir, 'raw');
    const text = join(dir, 'text');
    const json = join(dir, 'json');
    writeFileSync(raw, blob);
    writeFileSync(text, `${blob.toString('base64')}\n`);
    writeFileSync(json, JSON.stringify({ CiphertextBlob: blob.toString('base64'), Plaintext: 'AAAA', KeyId: 'k' }));
    expect(await readWrappedKeyFile(raw)).toMatchObject({ encoding: 'raw', holdsPlaintext: false });
    expect(await readWrappedKeyFile(text)).toMatchObject({ encoding: 'base64' });
    expect(await readWrappedKeyFile(json)).toMatchObject({ encoding: 'json', holdsPlaintext: true });
    for (const path of [raw, text, json]) expect((await readWrappedKeyFile(path)).blob.equals(blob)).toBe(true);
  });

  it('refuses an empty file, JSON without a CiphertextBlob, and a file too large for a key', async () => {
    expect(() => parseWrappedKey(Buffer.alloc(0))).toThrow(/empty/);
    expect(() => parseWrappedKey(Buffer.from('{"KeyId":"k"}'))).toThrow(/CiphertextBlob/);
    const big = join(dir, 'big');
    writeFileSync(big, randomBytes(20_000));
    await expect(readWrappedKeyFile(big)).rejects.toThrow(/larger than any KMS ciphertext/);
  });
});

describe('manifests', () => {
  it('reads CSV with a header row (quoted fields, extra columns), paths relative to the manifest', async () => {
    const path = join(dir, 'm.csv');
    writeFileSync(path, 'wrapped_key,file,team,note\nkeys/a.key,data/a.enc,billing,"with, comma"\n/abs/b.key,b.enc,ops,\n');
    const rows = await readManifest(path);
    expect(rows).toEqual([
      { row: 1, wrappedKey: join(dir, 'keys/a.key'), file: join(dir, 'data/a.enc'), columns: { wrapped_key: 'keys/a.key', file: 'data/a.enc', team: 'billing', note: 'with, comma' } },
      { row: 2, wrappedKey: '/abs/b.key', file: join(dir, 'b.enc'), columns: { wrapped_key: '/abs/b.key', file: 'b.enc', team: 'ops', note: '' } },
    ]);
  });

  it('reads JSON lines (numbers become text), skipping blank lines', async () => {
    const path = join(dir, 'm.jsonl');
    writeFileSync(path, '{"wrapped_key":"a.key","file":"a.enc","shard":7}\n\n{"wrapped_key":"b.key","file":"b.enc"}\n');
    const rows = await readManifest(path);
    expect(rows.map((row) => row.columns.shard)).toEqual(['7', undefined]);
    expect(rows.map((row) => row.row)).toEqual([1, 3]);
  });

  it('names the row and column that is missing or malformed', async () => {
    const missing = join(dir, 'missing.csv');
    writeFileSync(missing, 'wrapped_key,file\na.key,\n');
    await expect(readManifest(missing)).rejects.toThrow(/row 1 has no "file"/);
    const nested = join(dir, 'nested.jsonl');
    writeFileSync(nested, '{"wrapped_key":"a","file":"b","team":{"x":1}}\n');
    await expect(readManifest(nested)).rejects.toThrow(/column "team"/);
    const broken = join(dir, 'broken.jsonl');
    writeFileSync(broken, '{"wrapped_key":"a","file":"b"}\n{nope\n');
    await expect(readManifest(broken)).rejects.toThrow(/line 2 is not JSON/);
  });
});

describe('--context templates', () => {
  it('fills {column} from the row, {{ and }} are literal braces, the first = splits', () => {
    const templates = ['team={team}', 'path=s3://{bucket}/{team}', 'lit={{x}}', 'eq=a=b'].map(parseContextTemplate);
    expect(fillContext(templates, { team: 'billing', bucket: 'old' })).toEqual({ team: 'billing', path: 's3://old/billing', lit: '{x}', eq: 'a=b' });
    expect(columnsOf('{a}-{b}')).toEqual(['a', 'b']);
  });

  it('refuses a lone brace at once, and a missing or empty column for that row only', () => {
    expect(() => parseContextTemplate('team={team')).toThrow(/lone/);
    expect(() => parseContextTemplate('novalue')).toThrow(/key=value/);
    const templates = [parseContextTemplate('team={team}')];
    expect(() => fillContext(templates, {})).toThrow(/does not have/);
    expect(() => fillContext(templates, { team: '' })).toThrow(/leaves empty/);
  });
});

describe('the report', () => {
  it('remembers migrated sources across runs, ignoring a line cut by a crash', async () => {
    const out = mkdtempSync(join(dir, 'report-'));
    const writer = new ReportWriter(reportPath(out));
    await writer.append({ source: '/a', wrappedKey: '/a.key', output: `${out}/a.env`, status: 'migrated', sha256: 'x', bytes: 1 });
    await writer.append({ source: '/b', wrappedKey: '/b.key', output: `${out}/b.env`, status: 'failed', code: 'BadPadding', reason: 'r' });
    writeFileSync(reportPath(out), '{"source":"/c","status":"migr', { flag: 'a' });
    const done = await migratedSources(out);
    expect([...done.keys()]).toEqual(['/a']);
  });
});
