/**
 * The migration report, `DIR/migrate-report.jsonl`: one JSON line per file per run, appended,
 * so a batch cut short keeps what it did. A re-run skips a source the report says was migrated
 * to an output that still exists. No key material or plaintext goes in; `sha256` is the
 * plaintext's digest (what the verification compared), so the report is as sensitive as a
 * list of checksums of the data.
 */
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export const REPORT_NAME = 'migrate-report.jsonl';

export type MigrationStatus = 'migrated' | 'skipped' | 'failed';

export interface ReportLine {
  time: string;
  source: string;
  wrappedKey: string;
  output: string;
  status: MigrationStatus;
  /** Why it failed or was skipped. */
  reason?: string;
  /** A stable code for a failure (e.g. BadPadding, NoDerivationFits, UnwrapFailed, VerifyMismatch). */
  code?: string;
  /** SHA-256 (hex) of the plaintext, as read from the OpenSSL file and as decrypted back. */
  sha256?: string;
  /** Plaintext bytes. */
  bytes?: number;
  /** The derivation that decrypted the OpenSSL file. */
  kdf?: string;
  /** The KMS key ARN the new ciphertext is under. */
  keyArn?: string;
}

export function reportPath(outDir: string): string {
  return join(outDir, REPORT_NAME);
}

/** Output path per source for every line that says migrated (a missing report is an empty one). */
export async function migratedSources(outDir: string): Promise<Map<string, ReportLine>> {
  let text: string;
  try {
    text = await readFile(reportPath(outDir), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw error;
  }
  const done = new Map<string, ReportLine>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let parsed: ReportLine;
    try {
      parsed = JSON.parse(line) as ReportLine;
    } catch {
      continue; // a line cut by a crash: that file was not counted, so it runs again
    }
    if (parsed.status === 'migrated' && typeof parsed.source === 'string') done.set(parsed.source, parsed);
  }
  return done;
}

/** Appends lines one at a time, in order (each append is one write of a whole line). */
export class ReportWriter {
  private tail: Promise<void> = Promise.resolve();

  constructor(private readonly path: string) {}

  append(line: Omit<ReportLine, 'time'>): Promise<void> {
    const text = `${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`;
    this.tail = this.tail.then(() => appendFile(this.path, text, { mode: 0o600 }));
    return this.tail;
  }
}
