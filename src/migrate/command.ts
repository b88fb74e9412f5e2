/**
 * `envelope migrate`: files made the manual way (a KMS data key and `openssl enc`) into this
 * service's stream format, verified, with a report (docs/MIGRATION.md).
 *
 *   envelope migrate --key-id K [--context k=v]... --out-dir DIR
 *                    (--wrapped-key KEYFILE FILE | --manifest M)
 *                    [--source-key-id K] [--source-context k=v]...
 *                    [--kdf md5|sha256|pbkdf2] [--iter N] [--password-form base64|raw]
 *                    [--kms-direct [--region R] [--kms-endpoint URL]] [--url URL] [--token-file F]
 *
 * Exit status: 0 every file migrated or skipped as done, 1 at least one file failed (the
 * report and the summary say which and why), 2 the command itself could not run (usage, an
 * unreadable manifest, no token).
 */
import { mkdir, readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { KMSClient } from '@aws-sdk/client-kms';
import { parseContextTemplate, type ContextTemplate } from './context-template.js';
import { readManifest } from './manifest.js';
import { migrateBatch, type BatchEntry, type BatchProgress, type BatchSummary } from './migrate-batch.js';
import { kmsDirectKeys, type MigrationKeys } from './migration-keys.js';
import { DEFAULT_PBKDF2_ITERATIONS, parseKdf, type PasswordForm } from './openssl-enc.js';
import { terminalProgress } from './progress.js';
import { reportPath } from './report.js';
import { serviceKeys } from './service-keys.js';

export const MIGRATE_USAGE = `usage: envelope migrate --key-id K [--context k=v]... --out-dir DIR (--wrapped-key KEYFILE FILE | --manifest M)
  --key-id K              KMS key of the new ciphertexts
  --context k=v           their encryption context; {column} takes a manifest column, {{ }} literal braces
  --out-dir DIR           writes DIR/<file name>.env and DIR/migrate-report.jsonl
  --wrapped-key KEYFILE FILE   one pair: the wrapped data key (raw, base64 or the JSON answer) and the openssl file
  --manifest M            many pairs: CSV (header row) or JSON lines with columns wrapped_key, file, and any others
  --source-key-id K       KMS key the data keys were generated under (default: --key-id)
  --source-context k=v    the context given to generate-data-key, if any (same syntax as --context)
  --kdf md5|sha256|pbkdf2 the openssl key derivation (default: detected; see docs/MIGRATION.md)
  --iter N                pbkdf2 iterations (default ${DEFAULT_PBKDF2_ITERATIONS})
  --password-form F       base64 (the key as generate-data-key prints it, default) or raw (-pass file: on the decoded key)
  --kms-direct            unwrap and issue data keys with KMS directly (AWS credentials), not through the service
  --region R, --kms-endpoint URL   for --kms-direct (default: the AWS SDK's own configuration)
  --url URL               the service (default: $ENVELOPE_URL)
  --token-file F          a file holding the bearer token (default: $ENVELOPE_TOKEN)`;

export interface CommandIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WriteStream | NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  /** A progress display (default: a bar when stderr is a TTY). */
  progress?: BatchProgress;
  /** Replaces the data-key source (tests give a KMS client of their own). */
  keys?: MigrationKeys;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export async function runMigrate(argv: string[], io: CommandIo): Promise<number> {
  let summary: BatchSummary;
  let outDir: string;
  try {
    const prepared = await prepare(argv, io);
    outDir = prepared.outDir;
    summary = await migrateBatch(prepared.entries, prepared.options);
  } catch (error) {
    io.stderr.write(`envelope migrate: ${(error as Error).message}\n`);
    if (error instanceof UsageError) io.stderr.write(`${MIGRATE_USAGE}\n`);
    return 2;
  }
  io.stdout.write(`migrated ${summary.migrated}, skipped as done ${summary.skipped}, failed ${summary.failed.length}; report: ${reportPath(outDir)}\n`);
  for (const failure of summary.failed) io.stdout.write(`failed: ${failure.source}: ${failure.code}: ${failure.reason}\n`);
  return summary.failed.length > 0 ? 1 : 0;
}

async function prepare(argv: string[], io: CommandIo) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        'key-id': { type: 'string' },
        context: { type: 'string', multiple: true },
        'out-dir': { type: 'string' },
        'wrapped-key': { type: 'string' },
        manifest: { type: 'string' },
        'source-key-id': { type: 'string' },
        'source-context': { type: 'string', multiple: true },
        kdf: { type: 'string' },
        iter: { type: 'string' },
        'password-form': { type: 'string' },
        'kms-direct': { type: 'boolean' },
        region: { type: 'string' },
        'kms-endpoint': { type: 'string' },
        url: { type: 'string' },
        'token-file': { type: 'string' },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  const keyId = values['key-id'];
  const outDirOption = values['out-dir'];
  if (!keyId) throw new UsageError('--key-id is required');
  if (!outDirOption) throw new UsageError('--out-dir is required');
  const outDir = resolve(outDirOption);

  let entries: BatchEntry[];
  if (values.manifest !== undefined) {
    if (values['wrapped-key'] !== undefined || positionals.length > 0) throw new UsageError('give --manifest, or --wrapped-key KEYFILE FILE, not both');
    entries = (await readManifest(values.manifest)).map((row) => ({ source: row.file, wrappedKeyPath: row.wrappedKey, columns: row.columns }));
  } else {
    if (values['wrapped-key'] === undefined || positionals.length !== 1) throw new UsageError('give --wrapped-key KEYFILE FILE (one file), or --manifest M');
    entries = [{ source: positionals[0] as string, wrappedKeyPath: values['wrapped-key'], columns: {} }];
  }

  const context: ContextTemplate[] = (values.context ?? []).map(usage(parseContextTemplate));
  const sourceContext: ContextTemplate[] = (values['source-context'] ?? []).map(usage(parseContextTemplate));
  const iterations = values.iter === undefined ? DEFAULT_PBKDF2_ITERATIONS : Number(values.iter);
  const kdf = values.kdf === undefined ? undefined : usage(() => parseKdf(values.kdf as string, iterations))();
  if (values.kdf === undefined) usage(() => parseKdf('pbkdf2', iterations))(); // checks --iter alone too
  const passwordForm = values['password-form'] ?? 'base64';
  if (passwordForm !== 'base64' && passwordForm !== 'raw') throw new UsageError('--password-form is base64 or raw');

  const keys = io.keys ?? (values['kms-direct'] ? kmsKeys(values.region, values['kms-endpoint']) : await serviceKeysFrom(values.url, values['token-file'], io.env));
  await mkdir(outDir, { recursive: true, mode: 0o700 });
  const stderr = io.stderr as NodeJS.WriteStream;
  const progress = io.progress ?? (stderr.isTTY ? terminalProgress(stderr) : undefined);
  return {
    outDir,
    entries,
    options: {
      outDir,
      keyId,
      context,
      sourceKeyId: values['source-key-id'] ?? keyId,
      sourceContext,
      settings: { keys, kdf, iterations, passwordForm: passwordForm as PasswordForm },
      progress,
    },
  };
}

/** Runs a parser, turning its error into a usage error. */
function usage<A extends unknown[], R>(parse: (...args: A) => R): (...args: A) => R {
  return (...args) => {
    try {
      return parse(...args);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  };
}

function kmsKeys(region: string | undefined, endpoint: string | undefined): MigrationKeys {
  return kmsDirectKeys(new KMSClient({ ...(region ? { region } : {}), ...(endpoint ? { endpoint } : {}) }));
}

async function serviceKeysFrom(urlOption: string | undefined, tokenFile: string | undefined, env: NodeJS.ProcessEnv): Promise<MigrationKeys> {
  const url = urlOption ?? env.ENVELOPE_URL;
  if (!url) throw new UsageError('the service is $ENVELOPE_URL or --url (or give --kms-direct)');
  const token = tokenFile !== undefined ? (await readFile(tokenFile, 'utf8')).trim() : env.ENVELOPE_TOKEN;
  if (!token) throw new UsageError('the token is $ENVELOPE_TOKEN or --token-file (never a flag: it would land in shell history)');
  return serviceKeys({ url, token });
}
