/**
 * The manifest of many pairs: CSV with a header row, or JSON lines (one object per line).
 * Two columns are required: `wrapped_key` (the wrapped data key file) and `file` (the OpenSSL
 * file); relative paths are resolved against the manifest's folder. Every other column is a
 * value `--context k={column}` (and `--source-context`) may use. The format is chosen by the
 * extension (.csv; .jsonl or .ndjson), else by the first character (`{` is JSON lines).
 */
import { readFile } from 'node:fs/promises';
import { dirname, extname, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';

export interface ManifestRow {
  /** 1-based line (JSON lines) or record (CSV, header excluded) number, for messages. */
  row: number;
  wrappedKey: string;
  file: string;
  columns: Record<string, string>;
}

export class ManifestError extends Error {
  override readonly name = 'ManifestError';
  readonly code = 'BadManifest';
}

export const REQUIRED_COLUMNS = ['wrapped_key', 'file'] as const;

/** Reads the whole manifest: it lists paths, not data, so even a large one fits in memory. */
export async function readManifest(path: string): Promise<ManifestRow[]> {
  const text = await readFile(path, 'utf8');
  const base = dirname(resolve(path));
  const extension = extname(path).toLowerCase();
  const json = extension === '.jsonl' || extension === '.ndjson' || (extension !== '.csv' && text.trimStart().startsWith('{'));
  const records = json ? jsonLines(text) : csvRecords(text);
  return records.map(({ row, record }) => toRow(row, record, base));
}

function jsonLines(text: string): { row: number; record: Record<string, unknown> }[] {
  const out: { row: number; record: Record<string, unknown> }[] = [];
  text.split('\n').forEach((line, index) => {
    if (line.trim() === '') return;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      throw new ManifestError(`manifest line ${index + 1} is not JSON`);
    }
    if (typeof record !== 'object' || record === null || Array.isArray(record)) throw new ManifestError(`manifest line ${index + 1} is not a JSON object`);
    out.push({ row: index + 1, record: record as Record<string, unknown> });
  });
  return out;
}

function csvRecords(text: string): { row: number; record: Record<string, unknown> }[] {
  let records: Record<string, string>[];
  try {
    records = parse(text, { columns: true, skip_empty_lines: true, trim: true, bom: true });
  } catch (error) {
    throw new ManifestError(`the CSV manifest does not parse: ${(error as Error).message}`);
  }
  return records.map((record, index) => ({ row: index + 1, record }));
}

function toRow(row: number, record: Record<string, unknown>, base: string): ManifestRow {
  const columns: Record<string, string> = {};
  for (const [name, value] of Object.entries(record)) {
    if (typeof value === 'string') columns[name] = value;
    else if (typeof value === 'number' || typeof value === 'boolean') columns[name] = String(value);
    else if (value !== null && value !== undefined) throw new ManifestError(`manifest row ${row}: column "${name}" must be a string, number or boolean`);
  }
  for (const name of REQUIRED_COLUMNS) {
    if (!columns[name]) throw new ManifestError(`manifest row ${row} has no "${name}" (the columns are ${REQUIRED_COLUMNS.join(', ')}, then any for --context)`);
  }
  return { row, wrappedKey: resolve(base, columns.wrapped_key as string), file: resolve(base, columns.file as string), columns };
}
