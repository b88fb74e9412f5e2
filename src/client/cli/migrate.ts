/**
 * `envelope migrate`: files made the manual way (a KMS data key as the password of
 * `openssl enc`) into stream format v2, verified, with a report (docs/MIGRATION.md; the work is
 * in ../migrate/). Exit status: 0 every file migrated or skipped as done, 1 at least one file
 * failed (the others still ran; the summary and the report say why), 2 usage; a failure before
 * any file (an unreadable manifest, no service) exits as the other subcommands do.
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { KMSClient } from '@aws-sdk/client-kms';
import { COMMON_USAGE, stringOption, type Command, type Values } from './command.js';
import { EXIT, UsageError } from './exit-codes.js';
import { parseContextTemplate, type ContextTemplate } from '../migrate/context-template.js';
import { readManifest } from '../migrate/manifest.js';
import { migrateBatch, type BatchEntry } from '../migrate/migrate-batch.js';
import { kmsDirectKeys, type MigrationKeys } from '../migrate/migration-keys.js';
import { DEFAULT_PBKDF2_ITERATIONS, parseKdf, type PasswordForm } from '../migrate/openssl-enc.js';
import { terminalProgress } from '../migrate/progress.js';
import { reportPath } from '../migrate/report.js';
import { serviceKeys } from '../migrate/service-keys.js';

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'bring in files made with a KMS data key and openssl enc (docs/MIGRATION.md)',
  usage: `usage: envelope migrate --key-id K [--context k=v]... --out-dir DIR (--wrapped-key KEYFILE FILE | --manifest M)

Decrypts each openssl enc file with its unwrapped data key, seals it client-side into stream
format v2 under --key-id and --context, decrypts that back and compares SHA-256, and only then
writes DIR/<FILE's name>.env. Appends one line per file to DIR/migrate-report.jsonl; a re-run
skips what the report says is migrated. Never changes, deletes or overwrites a file.

  --key-id K              KMS key of the new ciphertexts
  --context k=v           their encryption context, repeatable; {column} takes the manifest row's
                          column, {{ and }} are literal braces
  --out-dir DIR           where the outputs and the report go (created 0700)
  --wrapped-key KEYFILE FILE   one pair: the wrapped data key (raw, base64, or generate-data-key's
                          JSON answer) and the openssl file
  --manifest M            many pairs: CSV with a header row, or JSON lines; columns wrapped_key,
                          file, and any others for --context
  --source-key-id K       the KMS key the data keys were generated under (default: --key-id)
  --source-context k=v    the context given to generate-data-key, if any (same syntax)
  --kdf md5|sha256|pbkdf2 the openssl key derivation (default: detected, see docs/MIGRATION.md)
  --iter N                pbkdf2 iterations (default ${DEFAULT_PBKDF2_ITERATIONS})
  --password-form F       base64 (the key as generate-data-key prints it; default) or raw
                          (-pass file: on the decoded key)
  --kms-direct            unwrap and issue data keys with KMS itself (AWS credentials) instead of
                          the service's /v1/unwrap (grant datakey:unwrap) and /v1/datakey
                          (grant datakey:plaintext)
  --region R, --kms-endpoint URL   for --kms-direct (default: the AWS SDK's configuration)

${COMMON_USAGE}`,
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
  },
  async run({ values, operands, io, client }) {
    const keyId = stringOption(values, 'key-id');
    const outDirOption = stringOption(values, 'out-dir');
    if (!keyId) throw new UsageError('--key-id is required');
    if (!outDirOption) throw new UsageError('--out-dir is required');
    const outDir = resolve(outDirOption);
    const manifest = stringOption(values, 'manifest');
    const wrappedKey = stringOption(values, 'wrapped-key');
    if (manifest !== undefined && (wrappedKey !== undefined || operands.length > 0)) throw new UsageError('give --manifest M, or --wrapped-key KEYFILE FILE, not both');
    if (manifest === undefined && (wrappedKey === undefined || operands.length !== 1)) throw new UsageError('give --wrapped-key KEYFILE FILE (one file), or --manifest M');
    const context = templates(values, 'context');
    const sourceContext = templates(values, 'source-context');
    const iterOption = stringOption(values, 'iter');
    const iterations = iterOption === undefined ? DEFAULT_PBKDF2_ITERATIONS : Number(iterOption);
    const kdfOption = stringOption(values, 'kdf');
    const kdf = asUsage(() => parseKdf(kdfOption ?? 'pbkdf2', iterations)); // checks --iter alone too
    const passwordForm = stringOption(values, 'password-form') ?? 'base64';
    if (passwordForm !== 'base64' && passwordForm !== 'raw') throw new UsageError('--password-form is base64 or raw');

    const entries: BatchEntry[] =
      manifest !== undefined
        ? (await readManifest(manifest)).map((row) => ({ source: row.file, wrappedKeyPath: row.wrappedKey, columns: row.columns }))
        : [{ source: operands[0] as string, wrappedKeyPath: wrappedKey as string, columns: {} }];
    const keys: MigrationKeys = values['kms-direct']
      ? kmsDirectKeys(kmsClient(stringOption(values, 'region'), stringOption(values, 'kms-endpoint'), io.env))
      : serviceKeys(client());
    await mkdir(outDir, { recursive: true, mode: 0o700 });
    const summary = await migrateBatch(entries, {
      outDir,
      keyId,
      context,
      sourceKeyId: stringOption(values, 'source-key-id') ?? keyId,
      sourceContext,
      settings: { keys, kdf: kdfOption === undefined ? undefined : kdf, iterations, passwordForm },
      ...(io.stderr.isTTY ? { progress: terminalProgress(io.stderr) } : {}),
    });
    io.stdout.write(`migrated ${summary.migrated}, skipped as done ${summary.skipped}, failed ${summary.failed.length}; report: ${reportPath(outDir)}\n`);
    for (const failure of summary.failed) io.stdout.write(`failed: ${failure.source}: ${failure.code}: ${failure.reason}\n`);
    return summary.failed.length > 0 ? EXIT.failure : EXIT.ok;
  },
};

function templates(values: Values, name: string): ContextTemplate[] {
  const raw = values[name];
  const pairs = (Array.isArray(raw) ? raw : raw === undefined ? [] : [raw]).filter((value): value is string => typeof value === 'string');
  return pairs.map((pair) => asUsage(() => parseContextTemplate(pair)));
}

function asUsage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/**
 * The AWS SDK's client; credentials from its default chain, or from the command's environment
 * when that names them (the same variables the chain reads first).
 */
function kmsClient(region: string | undefined, endpoint: string | undefined, env: NodeJS.ProcessEnv): KMSClient {
  const credentials =
    env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? { credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) } }
      : {};
  const regionOption = region ?? env.AWS_REGION;
  return new KMSClient({ ...(regionOption ? { region: regionOption } : {}), ...(endpoint ? { endpoint } : {}), ...credentials });
}
