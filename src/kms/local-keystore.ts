/**
 * The local provider's keystore file: load, validate, create, save.
 *
 * File (JSON, mode 0600, parent directory created 0700):
 *   { "format": "envelope-service/local-keystore", "version": 1,
 *     "keys":    [{ "keyId": <uuid>, "keyMaterial": <base64 of 32 bytes>,
 *                   "keyState": "Enabled" | "Disabled" | "PendingDeletion",
 *                   "creationDate": <ISO 8601>, "deletionDate"?: <ISO 8601> }],
 *     "aliases": [{ "aliasName": "alias/…", "targetKeyId": <uuid> }],
 *     "signingKey"?: { "keyId": <uuid>, "keySpec": "ECC_NIST_P256",
 *                      "privateKey": <base64 PKCS#8 DER>, "creationDate": <ISO 8601> } }
 *
 * `signingKey` signs the audit checkpoints (src/audit/signer-local.ts). Keystores written before
 * it existed have none: it is added on first use, by the same atomic save. A save never drops
 * it: whoever saves without knowing it (the provider's admin methods) carries over the one in
 * the file being replaced.
 *
 * Rules, all enforced when the provider is constructed, and never "repaired":
 * - Missing file: created (first start). Creation is exclusive (link(2) of a fully written,
 *   fsynced temp file), so two processes starting together cannot both make a default key
 *   and have one silently lose it: the second adopts the first's file.
 * - Unreadable, not JSON, wrong format/version, any invalid field: KeystoreError, and the file
 *   is left exactly as it was. Replacing it would destroy the only copy of the master keys and
 *   with them every ciphertext ever written.
 * - Group/other permission bits set (someone widened 0600): KeystoreError, like ssh refusing a
 *   private key readable by others. The message says how to fix it (chmod 600).
 * - Whoever can write the file's directory, or any directory above it, can swap the keystore
 *   for one holding keys they know. So, as ssh's StrictModes checks a key's path, the file
 *   and every directory up to / must be owned by the process user or root, and no directory
 *   may be group- or other-writable; an ancestor with the sticky bit (/tmp) is accepted,
 *   since others cannot rename or delete what is ours in it, but the keystore's own
 *   directory never is. Checked before the file is read or created. The POSIX checks are
 *   skipped on Windows, where mode bits and uids mean nothing.
 * - Saves are atomic: temp file (0600) written + fsynced, renamed over the old file, and the
 *   directory fsynced, so a crash leaves the old or the new keystore, never a torn one.
 */
import {
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { isKeyUuid } from './local-wrap.js';

export const KEYSTORE_FORMAT = 'envelope-service/local-keystore';
export const KEYSTORE_VERSION = 1;
export const MASTER_KEY_BYTES = 32;

export type LocalKeyState = 'Enabled' | 'Disabled' | 'PendingDeletion';
const KEY_STATES: readonly LocalKeyState[] = ['Enabled', 'Disabled', 'PendingDeletion'];

/** KMS alias rules: `alias/` + 1-250 of [A-Za-z0-9/_-]; `alias/aws/` is reserved for AWS. */
const ALIAS_NAME = /^alias\/[A-Za-z0-9/_-]{1,250}$/;

export function isValidAliasName(name: string): boolean {
  return ALIAS_NAME.test(name) && !name.startsWith('alias/aws/');
}

export interface StoredKey {
  readonly keyId: string;
  /** 32 bytes, held in memory for the provider's life and zeroed on close. */
  readonly material: Buffer;
  readonly state: LocalKeyState;
  readonly creationDate: string;
  readonly deletionDate?: string;
}

export interface StoredSigningKey {
  readonly keyId: string;
  readonly keySpec: 'ECC_NIST_P256';
  /** PKCS#8 DER of the private key. Never logged. */
  readonly privateKey: Buffer;
  readonly creationDate: string;
}

export interface KeystoreData {
  readonly keys: ReadonlyMap<string, StoredKey>;
  /** alias name -> key id */
  readonly aliases: ReadonlyMap<string, string>;
  /** The audit checkpoints' signing key; absent in keystores that never signed one. */
  readonly signingKey?: StoredSigningKey;
}

export class KeystoreError extends Error {
  override readonly name = 'KeystoreError';
}

/** Reads and validates the keystore; undefined only when the file does not exist. */
export function readKeystore(path: string): KeystoreData | undefined {
  let text: string;
  try {
    checkLocation(path);
    checkPermissions(path);
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (error instanceof KeystoreError) throw error;
    throw new KeystoreError(`local keystore ${path} cannot be read: ${(error as Error).message}`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new KeystoreError(`local keystore ${path} is not valid JSON (corrupt?); it was left untouched`);
  }
  return parseKeystore(json, path);
}

/**
 * Writes a brand-new keystore, failing with EEXIST semantics if one appeared meanwhile.
 * Returns false when another process created the file first (the caller then reads it).
 */
export function createKeystoreExclusive(path: string, data: KeystoreData): boolean {
  let temp: string;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    temp = writeTempFile(path, serialize(data));
  } catch (error) {
    throw new KeystoreError(`local keystore ${path} cannot be created: ${(error as Error).message}`, { cause: error });
  }
  try {
    linkSync(temp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new KeystoreError(`local keystore ${path} cannot be created: ${(error as Error).message}`, { cause: error });
  } finally {
    unlinkSync(temp);
  }
  fsyncDirectory(dirname(path));
  return true;
}

/** Replaces the keystore atomically (temp + fsync + rename + directory fsync). */
export function saveKeystore(path: string, data: KeystoreData): void {
  let temp: string;
  try {
    const signingKey = data.signingKey ?? readKeystore(path)?.signingKey;
    temp = writeTempFile(path, serialize(signingKey ? { ...data, signingKey } : data));
  } catch (error) {
    throw new KeystoreError(`local keystore ${path} cannot be written: ${(error as Error).message}`, { cause: error });
  }
  try {
    renameSync(temp, path);
  } catch (error) {
    unlinkSync(temp);
    throw new KeystoreError(`local keystore ${path} cannot be replaced: ${(error as Error).message}`, { cause: error });
  }
  fsyncDirectory(dirname(path));
}

function writeTempFile(path: string, contents: string): string {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(temp, 'wx', 0o600);
  try {
    writeSync(fd, contents);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    unlinkSync(temp);
    throw error;
  }
  closeSync(fd);
  return temp;
}

function fsyncDirectory(dir: string): void {
  // Makes the rename/link itself durable. Not supported on every platform (Windows): best effort.
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // The data file itself is already fsynced.
  }
}

function checkPermissions(path: string): void {
  const stats = statSync(path);
  if (!stats.isFile()) throw new KeystoreError(`local keystore ${path} is not a regular file`);
  if (process.platform === 'win32') return;
  if (!trustedOwner(stats.uid)) {
    throw new KeystoreError(
      `local keystore ${path} is owned by uid ${stats.uid}, not by this process's user (uid ${currentUid()}) or root: ` +
        'another user could have put keys of their own in it',
    );
  }
  const mode = stats.mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new KeystoreError(
      `local keystore ${path} has mode 0${mode.toString(8)}: it holds master keys and must not be ` +
        `accessible to group or others; run \`chmod 600 ${path}\` if that is intended`,
    );
  }
}

/**
 * Refuses a keystore whose directory, or any directory above it, another user could write
 * (see the header). Directories that do not exist yet are skipped: they are created 0700.
 */
function checkLocation(path: string): void {
  if (process.platform === 'win32') return;
  const keystoreDir = realDirectory(dirname(resolve(path)));
  const fileDir = (() => {
    try {
      return dirname(realpathSync(path)); // a symlinked keystore is judged where it really is
    } catch {
      return keystoreDir;
    }
  })();
  for (const start of new Set([keystoreDir, fileDir])) {
    for (let dir = start, own = true; ; own = false) {
      const stats = statSync(dir);
      const mode = stats.mode & 0o7777;
      const writableByOthers = (mode & 0o022) !== 0;
      const sticky = (mode & 0o1000) !== 0;
      if (!trustedOwner(stats.uid)) {
        throw new KeystoreError(
          `local keystore ${path}: directory ${dir} is owned by uid ${stats.uid}, not by this process's user ` +
            `(uid ${currentUid()}) or root, so its owner could replace the keystore; move the keystore or \`chown\` the directory`,
        );
      }
      if (writableByOthers && (own || !sticky)) {
        throw new KeystoreError(
          `local keystore ${path}: directory ${dir} has mode 0${mode.toString(8)}: group or others can write it and ` +
            `so replace the keystore; run \`chmod go-w ${dir}\` (0700 is best) or move the keystore`,
        );
      }
      const parent = dirname(dir);
      if (parent === dir) break;
      dir = parent;
    }
  }
}

/** The real path of `dir`, or of its nearest existing ancestor (what is missing we create 0700). */
function realDirectory(dir: string): string {
  for (let current = dir; ; current = dirname(current)) {
    try {
      return realpathSync(current);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(current) === current) throw error;
    }
  }
}

function currentUid(): number {
  return process.getuid?.() ?? -1;
}

function trustedOwner(uid: number): boolean {
  return uid === 0 || uid === currentUid();
}

function serialize(data: KeystoreData): string {
  const keys = [...data.keys.values()].map((key) => ({
    keyId: key.keyId,
    keyMaterial: key.material.toString('base64'),
    keyState: key.state,
    creationDate: key.creationDate,
    ...(key.deletionDate ? { deletionDate: key.deletionDate } : {}),
  }));
  const aliases = [...data.aliases].map(([aliasName, targetKeyId]) => ({ aliasName, targetKeyId }));
  const signing = data.signingKey;
  const signingKey = signing && {
    keyId: signing.keyId,
    keySpec: signing.keySpec,
    privateKey: signing.privateKey.toString('base64'),
    creationDate: signing.creationDate,
  };
  return `${JSON.stringify({ format: KEYSTORE_FORMAT, version: KEYSTORE_VERSION, keys, aliases, ...(signingKey && { signingKey }) }, null, 2)}\n`;
}

// ---- validation ----------------------------------------------------------------------------

function parseKeystore(json: unknown, path: string): KeystoreData {
  const fail = (what: string): never => {
    throw new KeystoreError(`local keystore ${path}: ${what}; it was left untouched`);
  };
  const root = asRecord(json) ?? fail('not a JSON object');
  exactFields(root, ['format', 'version', 'keys', 'aliases'], ['signingKey'], 'keystore', fail);
  if (root.format !== KEYSTORE_FORMAT) fail(`format is not "${KEYSTORE_FORMAT}"`);
  if (root.version !== KEYSTORE_VERSION) {
    fail(`schema version ${JSON.stringify(root.version)} is not supported (this build reads version ${KEYSTORE_VERSION})`);
  }
  if (!Array.isArray(root.keys)) fail('"keys" is not an array');
  if (!Array.isArray(root.aliases)) fail('"aliases" is not an array');

  const keys = new Map<string, StoredKey>();
  for (const [index, entry] of (root.keys as unknown[]).entries()) {
    const key = parseKey(entry, `keys[${index}]`, fail);
    if (keys.has(key.keyId)) fail(`keys[${index}]: duplicate keyId ${key.keyId}`);
    keys.set(key.keyId, key);
  }
  const aliases = new Map<string, string>();
  for (const [index, entry] of (root.aliases as unknown[]).entries()) {
    const where = `aliases[${index}]`;
    const alias = asRecord(entry) ?? fail(`${where} is not an object`);
    exactFields(alias, ['aliasName', 'targetKeyId'], [], where, fail);
    const { aliasName, targetKeyId } = alias;
    if (typeof aliasName !== 'string' || !isValidAliasName(aliasName)) fail(`${where}: invalid aliasName`);
    if (typeof targetKeyId !== 'string' || !keys.has(targetKeyId)) fail(`${where}: targetKeyId is not a key in this keystore`);
    if (aliases.has(aliasName as string)) fail(`${where}: duplicate alias ${String(aliasName)}`);
    aliases.set(aliasName as string, targetKeyId as string);
  }
  if (root.signingKey === undefined) return { keys, aliases };
  return { keys, aliases, signingKey: parseSigningKey(root.signingKey, fail) };
}

function parseSigningKey(entry: unknown, fail: (what: string) => never): StoredSigningKey {
  const where = 'signingKey';
  const key = asRecord(entry) ?? fail(`${where} is not an object`);
  exactFields(key, ['keyId', 'keySpec', 'privateKey', 'creationDate'], [], where, fail);
  const { keyId, keySpec, privateKey, creationDate } = key;
  if (typeof keyId !== 'string' || !isKeyUuid(keyId)) fail(`${where}: keyId is not a lowercase UUID`);
  if (keySpec !== 'ECC_NIST_P256') fail(`${where}: keySpec must be ECC_NIST_P256`);
  if (!isIsoDate(creationDate)) fail(`${where}: creationDate is not an ISO 8601 date`);
  const der = typeof privateKey === 'string' ? Buffer.from(privateKey, 'base64') : Buffer.alloc(0);
  let valid = der.length > 0 && der.toString('base64') === privateKey;
  if (valid) {
    try {
      const parsed = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
      valid = parsed.asymmetricKeyType === 'ec' && parsed.asymmetricKeyDetails?.namedCurve === 'prime256v1';
    } catch {
      valid = false;
    }
  }
  if (!valid) fail(`${where}: privateKey is not the base64 of a PKCS#8 P-256 private key`);
  return { keyId: keyId as string, keySpec: 'ECC_NIST_P256', privateKey: der, creationDate: creationDate as string };
}

function parseKey(entry: unknown, where: string, fail: (what: string) => never): StoredKey {
  const key = asRecord(entry) ?? fail(`${where} is not an object`);
  exactFields(key, ['keyId', 'keyMaterial', 'keyState', 'creationDate'], ['deletionDate'], where, fail);
  const { keyId, keyMaterial, keyState, creationDate, deletionDate } = key;
  if (typeof keyId !== 'string' || !isKeyUuid(keyId)) fail(`${where}: keyId is not a lowercase UUID`);
  if (typeof keyState !== 'string' || !KEY_STATES.includes(keyState as LocalKeyState)) {
    fail(`${where}: keyState must be one of ${KEY_STATES.join(', ')}`);
  }
  if (!isIsoDate(creationDate)) fail(`${where}: creationDate is not an ISO 8601 date`);
  if (deletionDate !== undefined && !isIsoDate(deletionDate)) fail(`${where}: deletionDate is not an ISO 8601 date`);
  if (keyState === 'PendingDeletion' && deletionDate === undefined) fail(`${where}: PendingDeletion without deletionDate`);
  // Canonical base64 of exactly 32 bytes: Buffer.from(…, 'base64') skips garbage silently, so
  // the round trip is what proves the field was intact. (Never echo the value in errors.)
  const material = typeof keyMaterial === 'string' ? Buffer.from(keyMaterial, 'base64') : Buffer.alloc(0);
  if (material.length !== MASTER_KEY_BYTES || material.toString('base64') !== keyMaterial) {
    material.fill(0);
    fail(`${where}: keyMaterial is not the base64 of ${MASTER_KEY_BYTES} bytes`);
  }
  return {
    keyId: keyId as string,
    material,
    state: keyState as LocalKeyState,
    creationDate: creationDate as string,
    ...(deletionDate !== undefined ? { deletionDate: deletionDate as string } : {}),
  };
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function exactFields(
  record: Record<string, unknown>,
  required: string[],
  optional: string[],
  where: string,
  fail: (what: string) => never,
): void {
  for (const field of required) if (!(field in record)) fail(`${where}: missing "${field}"`);
  for (const field of Object.keys(record)) {
    if (!required.includes(field) && !optional.includes(field)) fail(`${where}: unknown field "${field}"`);
  }
}

function isIsoDate(value: unknown): boolean {
  return typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(value) && !Number.isNaN(Date.parse(value));
}
