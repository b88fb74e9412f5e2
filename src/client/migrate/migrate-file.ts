/**
 * One file's migration, end to end, in constant memory:
 *   OpenSSL file -> AES-256-CBC decrypt -> SHA-256 tap -> stream format 2 sealer -> temp file
 *   temp file -> stream opener (the new key) -> SHA-256, compared with the tap's
 *   only then: the temp file is linked to its final name (never replacing a file) and removed.
 * Any failure removes the temp file; the source is only ever read.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, open, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Context as EncryptionContext } from '../context-header.js';
import type { MigrationKeys } from './migration-keys.js';
import { OpensslDecryptStream, chooseKdf, describeKdf, detectionCandidates, opensslPassword, readEncLayout, type KdfSpec, type PasswordForm } from './openssl-enc.js';
import { reclaimer } from './reclaim.js';
import { VerifyError, digestOfSealed, sealerFor } from './stream-seal.js';
import { readWrappedKeyFile } from './wrapped-key-file.js';

export interface MigrationJob {
  source: string;
  wrappedKeyPath: string;
  output: string;
  /** The KMS key and context of the new ciphertext. */
  keyId: string;
  context: EncryptionContext;
  /** The KMS key and context the wrapped key was made under (generate-data-key's). */
  sourceKeyId: string;
  sourceContext: EncryptionContext;
}

export interface MigrationSettings {
  keys: MigrationKeys;
  /** Pinned derivation (`--kdf`); detected when undefined. */
  kdf: KdfSpec | undefined;
  /** PBKDF2 rounds detection tries (`--iter`). */
  iterations: number;
  passwordForm: PasswordForm;
  /** Called with plaintext bytes as they are re-encrypted (the progress bar). */
  onBytes?: (bytes: number) => void;
}

export interface Migrated {
  sha256: string;
  bytes: number;
  kdf: string;
  keyArn: string;
}

/** A file-level failure with a stable code, as the report carries it. */
export class MigrationError extends Error {
  override readonly name = 'MigrationError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Plaintext passes through untouched; its SHA-256 and length are kept. */
class DigestTap extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;

  constructor(
    private readonly onBytes: ((bytes: number) => void) | undefined,
    private readonly reclaim: (bytes: number) => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(chunk.length);
    this.reclaim(chunk.length);
    callback(null, chunk);
  }
}

export async function migrateFile(job: MigrationJob, settings: MigrationSettings): Promise<Migrated> {
  if (await exists(job.output)) throw new MigrationError('OutputExists', `${job.output} exists already: it is never replaced`);
  const wrapped = await readWrappedKeyFile(job.wrappedKeyPath);
  // The length check costs no KMS call: a truncated file fails here.
  const layout = await readEncLayout(job.source);
  const sourceKey = await settings.keys.unwrap(wrapped.blob, job.sourceKeyId, job.sourceContext);
  const password = opensslPassword(sourceKey, settings.passwordForm);
  sourceKey.fill(0);
  const temp = join(dirname(job.output), `.${basename(job.output)}.${randomBytes(6).toString('hex')}.tmp`);
  let newKey: Awaited<ReturnType<MigrationKeys['issue']>> | undefined;
  try {
    const kdf = chooseKdf(layout, password, settings.kdf, detectionCandidates(settings.iterations));
    const decrypt = new OpensslDecryptStream(password, layout.salt, kdf);
    password.fill(0);
    newKey = await settings.keys.issue(job.keyId, job.context);
    const reclaim = reclaimer();
    const tap = new DigestTap(settings.onBytes, reclaim);
    await pipeline(
      createReadStream(job.source, { start: layout.bodyOffset }),
      decrypt,
      tap,
      sealerFor(newKey, job.context),
      createWriteStream(temp, { flags: 'wx', mode: 0o600 }),
    );
    await syncFile(temp);
    const read = { sha256: tap.hash.digest('hex'), bytes: tap.bytes };
    const back = await digestOfSealed(temp, newKey, job.context, reclaim);
    if (back.sha256 !== read.sha256 || back.bytes !== read.bytes) {
      throw new VerifyError('VerifyMismatch', 'the new ciphertext decrypts to other bytes than the OpenSSL file held');
    }
    await publish(temp, job.output);
    return { ...read, kdf: describeKdf(kdf), keyArn: newKey.keyArn };
  } finally {
    password.fill(0);
    newKey?.plaintextKey.fill(0);
    await unlink(temp).catch(() => undefined);
  }
}

/** Links the verified temp file to its name: EEXIST instead of replacing a file that appeared meanwhile. */
async function publish(temp: string, output: string): Promise<void> {
  try {
    await link(temp, output);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new MigrationError('OutputExists', `${output} appeared during the migration: it is never replaced`);
    throw error;
  }
  await syncFile(dirname(output));
}

async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
