/**
 * A batch of (wrapped key, OpenSSL file) pairs, one file at a time (memory stays that of one
 * stream): each file's outcome is appended to the report as it happens, one file's failure
 * never stops the others, and what the report says was migrated (its output still there) is
 * skipped. Two sources with the same name would want the same output: the second one fails.
 */
import { stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { Context as EncryptionContext } from '../context-header.js';
import { fillContext, type ContextTemplate } from './context-template.js';
import { migrateFile, type MigrationSettings } from './migrate-file.js';
import { ReportWriter, migratedSources, reportPath, type MigrationStatus, type ReportLine } from './report.js';

export interface BatchEntry {
  source: string;
  wrappedKeyPath: string;
  /** The manifest row's columns (none for a single pair). */
  columns: Readonly<Record<string, string>>;
}

export interface BatchOptions {
  outDir: string;
  keyId: string;
  context: readonly ContextTemplate[];
  sourceKeyId: string;
  sourceContext: readonly ContextTemplate[];
  settings: Omit<MigrationSettings, 'onBytes'>;
  progress?: BatchProgress;
}

/** What a progress display is told. */
export interface BatchProgress {
  start(files: number, bytes: number): void;
  bytes(count: number): void;
  fileDone(status: MigrationStatus): void;
  stop(): void;
}

export interface BatchSummary {
  migrated: number;
  skipped: number;
  failed: { source: string; code: string; reason: string }[];
}

/** The output name the command promises: DIR/<the source's name>.env */
export function outputFor(outDir: string, source: string): string {
  return join(outDir, `${basename(source)}.env`);
}

export async function migrateBatch(entries: readonly BatchEntry[], options: BatchOptions): Promise<BatchSummary> {
  const report = new ReportWriter(reportPath(options.outDir));
  const done = await migratedSources(options.outDir);
  const summary: BatchSummary = { migrated: 0, skipped: 0, failed: [] };
  const claimed = new Map<string, string>();
  const sizes = await Promise.all(entries.map(async (entry) => Math.max(0, await sizeOf(entry.source))));
  options.progress?.start(entries.length, sizes.reduce((sum, size) => sum + size, 0));
  try {
    for (const [index, entry] of entries.entries()) {
      const source = resolve(entry.source);
      const wrappedKey = resolve(entry.wrappedKeyPath);
      const output = outputFor(options.outDir, source);
      const record = async (status: MigrationStatus, fields: Omit<Partial<ReportLine>, 'time' | 'status'>) => {
        await report.append({ source, wrappedKey, output, status, ...fields });
        options.progress?.fileDone(status);
      };
      const earlier = claimed.get(output);
      if (earlier !== undefined) {
        const reason = `${output} is already the output of ${earlier} in this batch: rename one source or migrate it into another --out-dir`;
        summary.failed.push({ source, code: 'OutputCollision', reason });
        await record('failed', { code: 'OutputCollision', reason });
        continue;
      }
      claimed.set(output, source);
      const previous = done.get(source);
      if (previous?.output === output && (await sizeOf(output)) >= 0) {
        summary.skipped++;
        options.progress?.bytes(sizes[index] ?? 0);
        await record('skipped', { reason: `migrated earlier (${previous.time})`, sha256: previous.sha256, bytes: previous.bytes });
        continue;
      }
      let written = 0;
      try {
        const context: EncryptionContext = fillContext(options.context, entry.columns);
        const sourceContext: EncryptionContext = fillContext(options.sourceContext, entry.columns);
        const migrated = await migrateFile(
          { source, wrappedKeyPath: wrappedKey, output, keyId: options.keyId, context, sourceKeyId: options.sourceKeyId, sourceContext },
          {
            ...options.settings,
            onBytes: (count) => {
              written += count;
              options.progress?.bytes(count);
            },
          },
        );
        summary.migrated++;
        await record('migrated', migrated);
      } catch (error) {
        options.progress?.bytes(Math.max(0, (sizes[index] ?? 0) - written));
        const { code, reason } = describeFailure(error);
        summary.failed.push({ source, code, reason });
        await record('failed', { code, reason });
      }
    }
  } finally {
    options.progress?.stop();
  }
  return summary;
}

/** A stable code and a message for the report; file-system errors keep their errno name. */
export function describeFailure(error: unknown): { code: string; reason: string } {
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  return { code: typeof code === 'string' ? code : 'Failed', reason: message };
}

/** A file's size, or -1 when it cannot be read (the migration then says why). */
async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return -1;
  }
}
