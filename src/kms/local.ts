/**
 * LocalKeyProvider: the embedded default, KMS semantics without an AWS account.
 *
 * Master keys (AES-256) and aliases live in a keystore file (see local-keystore.ts) that is
 * read once at construction; afterwards every cryptographic call is pure in-memory work with
 * no file I/O (benchmarks run on this provider). Only the admin methods write the file.
 *
 * Semantics follow KMS, so code and tests behave the same on either provider:
 * - ids: key UUID, key ARN, alias name or alias ARN, in the pseudo-account
 *   `arn:aws:kms:local:000000000000:`. Anything else (another region/account) does not exist.
 * - unknown key/alias -> KeyNotFound; Disabled -> KeyDisabled; PendingDeletion ->
 *   KeyUnavailableState (KMS: DisabledException / KMSInvalidStateException).
 * - Decrypt names a key: a blob wrapped by another key is InvalidCiphertext (KMS answers
 *   IncorrectKeyException). Wrong/missing/extra context, tampering, garbage of any length:
 *   InvalidCiphertext, never another exception.
 * - ReEncrypt unwraps and re-wraps in memory; the intermediate plaintext is zeroed.
 * - every call, failed or not, gets a fresh UUID requestId (on the KmsError too).
 * Wrapping format and AAD: local-wrap.ts.
 *
 * The admin methods serve `npm run keys` (keys-cli.ts) and tests; the service never calls them.
 * Single writer: admin changes made by another process to the same file are not seen until
 * restart, and two processes doing admin writes would overwrite each other's changes.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { KmsError, type KmsErrorCode } from './errors.js';
import { assertStringContext, assertWellFormedKeyId } from './key-id.js';
import {
  KeystoreError,
  createKeystoreExclusive,
  isValidAliasName,
  readKeystore,
  saveKeystore,
  MASTER_KEY_BYTES,
  type KeystoreData,
  type LocalKeyState,
  type StoredKey,
} from './local-keystore.js';
import { unwrapDataKey, wrapDataKey, wrappedKeyId } from './local-wrap.js';
import { silentLogger, type ProviderLogger } from './logger.js';
import {
  DATA_KEY_BYTES,
  type EncryptionContext,
  type GeneratedDataKey,
  type KeyAlias,
  type KeyDescription,
  type KeyProvider,
  type RewrappedDataKey,
  type UnwrappedDataKey,
} from './provider.js';

export const LOCAL_REGION = 'local';
export const LOCAL_ACCOUNT_ID = '000000000000';
export const LOCAL_ARN_PREFIX = `arn:aws:kms:${LOCAL_REGION}:${LOCAL_ACCOUNT_ID}:`;
export const DEFAULT_ALIAS = 'alias/default';

export interface LocalKeyProviderOptions {
  /** Keystore file (Config.LOCAL_KEYSTORE). */
  path: string;
  logger?: ProviderLogger;
}

export interface LocalKeyInfo {
  keyId: string;
  keyArn: string;
  state: LocalKeyState;
  creationDate: string;
  deletionDate?: string;
}

export { KeystoreError };

export class LocalKeyProvider implements KeyProvider {
  readonly kind = 'local' as const;
  readonly path: string;
  private store: KeystoreData;
  private closed = false;

  /** Loads (or on first start creates) the keystore. Throws KeystoreError on any problem. */
  constructor(options: LocalKeyProviderOptions) {
    this.path = options.path;
    const logger = options.logger ?? silentLogger;
    const existing = readKeystore(this.path);
    if (existing) {
      this.store = existing;
      return;
    }
    const fresh = initialKeystore();
    if (createKeystoreExclusive(this.path, fresh)) {
      this.store = fresh;
      const defaultKeyId = fresh.aliases.get(DEFAULT_ALIAS) ?? '';
      logger.info(
        { keystore: this.path, alias: DEFAULT_ALIAS, keyArn: keyArn(defaultKeyId) },
        'created local keystore with a new default master key',
      );
      return;
    }
    // Another process created it between our read and our create: use theirs, drop ours.
    for (const key of fresh.keys.values()) key.material.fill(0);
    const created = readKeystore(this.path);
    if (!created) throw new KeystoreError(`local keystore ${this.path} vanished while being created`);
    this.store = created;
  }

  // ---- KeyProvider ------------------------------------------------------------------------

  async generateDataKey(keyId: string, context: EncryptionContext): Promise<GeneratedDataKey> {
    const requestId = randomUUID();
    const key = this.usableKey(keyId, context, requestId);
    const plaintextKey = randomBytes(DATA_KEY_BYTES);
    const wrappedKey = wrapDataKey(key.material, key.keyId, plaintextKey, context);
    return { keyArn: keyArn(key.keyId), plaintextKey, wrappedKey, requestId };
  }

  async decryptDataKey(wrappedKey: Buffer, keyId: string, context: EncryptionContext): Promise<UnwrappedDataKey> {
    const requestId = randomUUID();
    const key = this.usableKey(keyId, context, requestId);
    const plaintextKey = this.unwrap(key, wrappedKey, context, requestId);
    return { keyArn: keyArn(key.keyId), plaintextKey, requestId };
  }

  async reEncryptDataKey(
    wrappedKey: Buffer,
    sourceKeyId: string,
    sourceContext: EncryptionContext,
    destinationKeyId: string,
    destinationContext: EncryptionContext,
  ): Promise<RewrappedDataKey> {
    const requestId = randomUUID();
    const source = this.usableKey(sourceKeyId, sourceContext, requestId, 'sourceKeyId');
    const destination = this.usableKey(destinationKeyId, destinationContext, requestId, 'destinationKeyId');
    const dataKey = this.unwrap(source, wrappedKey, sourceContext, requestId);
    try {
      const rewrapped = wrapDataKey(destination.material, destination.keyId, dataKey, destinationContext);
      return { keyArn: keyArn(destination.keyId), wrappedKey: rewrapped, requestId };
    } finally {
      dataKey.fill(0);
    }
  }

  async encryptDataKey(plaintextKey: Buffer, keyId: string, context: EncryptionContext): Promise<RewrappedDataKey> {
    const requestId = randomUUID();
    const key = this.usableKey(keyId, context, requestId);
    if (plaintextKey.length !== DATA_KEY_BYTES) throw new KmsError('InvalidRequest', `a data key is ${DATA_KEY_BYTES} bytes`, requestId);
    return { keyArn: keyArn(key.keyId), wrappedKey: wrapDataKey(key.material, key.keyId, plaintextKey, context), requestId };
  }

  async describeKey(keyId: string): Promise<KeyDescription> {
    const requestId = randomUUID();
    const key = this.resolve(keyId, requestId);
    return { keyArn: keyArn(key.keyId), enabled: key.state === 'Enabled', state: key.state, requestId };
  }

  async listAliases(): Promise<KeyAlias[]> {
    this.assertOpen(randomUUID());
    return [...this.store.aliases].map(([aliasName, keyId]) => ({
      aliasName,
      aliasArn: `${LOCAL_ARN_PREFIX}${aliasName}`,
      keyArn: keyArn(keyId),
    }));
  }

  /** Zeroes the master keys held in memory; the provider is unusable afterwards. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const key of this.store.keys.values()) key.material.fill(0);
  }

  // ---- admin (keys-cli.ts, tests) ----------------------------------------------------------

  async createKey(): Promise<LocalKeyInfo> {
    const key = newKey();
    this.commit({ keys: withEntry(this.store.keys, key.keyId, key), aliases: this.store.aliases });
    return info(key);
  }

  async listKeys(): Promise<LocalKeyInfo[]> {
    return [...this.store.keys.values()].map(info);
  }

  /** Like KMS CreateAlias: the target must be a key id or key ARN, not another alias. */
  async createAlias(aliasName: string, targetKeyId: string): Promise<KeyAlias> {
    const requestId = randomUUID();
    this.checkAliasName(aliasName, requestId);
    if (this.store.aliases.has(aliasName)) fail('InvalidRequest', `alias ${aliasName} already exists`, requestId);
    return this.pointAlias(aliasName, targetKeyId, requestId);
  }

  async updateAlias(aliasName: string, targetKeyId: string): Promise<KeyAlias> {
    const requestId = randomUUID();
    this.checkAliasName(aliasName, requestId);
    if (!this.store.aliases.has(aliasName)) fail('KeyNotFound', `alias ${aliasName} does not exist`, requestId);
    return this.pointAlias(aliasName, targetKeyId, requestId);
  }

  async deleteAlias(aliasName: string): Promise<void> {
    const requestId = randomUUID();
    if (!this.store.aliases.has(aliasName)) fail('KeyNotFound', `alias ${aliasName} does not exist`, requestId);
    const aliases = new Map(this.store.aliases);
    aliases.delete(aliasName);
    this.commit({ keys: this.store.keys, aliases });
  }

  async disableKey(keyId: string): Promise<LocalKeyInfo> {
    return this.changeState(keyId, 'Disabled');
  }

  async enableKey(keyId: string): Promise<LocalKeyInfo> {
    return this.changeState(keyId, 'Enabled');
  }

  /**
   * KMS ScheduleKeyDeletion: the key refuses all use until cancelled. The key is never
   * actually purged by this provider (that would destroy data irrecoverably in a dev
   * keystore); `deletionDate` only records when KMS would have deleted it.
   */
  async scheduleKeyDeletion(keyId: string, pendingWindowInDays = 30): Promise<LocalKeyInfo> {
    const requestId = randomUUID();
    if (!Number.isInteger(pendingWindowInDays) || pendingWindowInDays < 7 || pendingWindowInDays > 30) {
      fail('InvalidRequest', 'pendingWindowInDays must be an integer from 7 to 30', requestId);
    }
    const key = this.keyByIdOrArn(keyId, requestId);
    if (key.state === 'PendingDeletion') fail('KeyUnavailableState', `key ${key.keyId} is already pending deletion`, requestId);
    const deletionDate = new Date(Date.now() + pendingWindowInDays * 86_400_000).toISOString();
    return this.replaceKey({ ...key, state: 'PendingDeletion', deletionDate });
  }

  /** KMS CancelKeyDeletion: the key comes back Disabled, to be enabled deliberately. */
  async cancelKeyDeletion(keyId: string): Promise<LocalKeyInfo> {
    const requestId = randomUUID();
    const key = this.keyByIdOrArn(keyId, requestId);
    if (key.state !== 'PendingDeletion') fail('KeyUnavailableState', `key ${key.keyId} is not pending deletion`, requestId);
    const { deletionDate: _dropped, ...rest } = key;
    return this.replaceKey({ ...rest, state: 'Disabled' });
  }

  // ---- internals --------------------------------------------------------------------------

  private usableKey(keyId: string, context: EncryptionContext, requestId: string, label = 'keyId'): StoredKey {
    const key = this.resolve(keyId, requestId, label);
    guard(() => assertStringContext(context), requestId);
    if (key.state === 'Disabled') fail('KeyDisabled', `${keyArn(key.keyId)} is disabled`, requestId);
    if (key.state === 'PendingDeletion') fail('KeyUnavailableState', `${keyArn(key.keyId)} is pending deletion`, requestId);
    return key;
  }

  private unwrap(key: StoredKey, wrappedKey: Buffer, context: EncryptionContext, requestId: string): Buffer {
    // Callers pass what came off the wire: check the type too, so nothing but KmsError escapes.
    const blob: unknown = wrappedKey;
    const blobKeyId = blob instanceof Uint8Array ? wrappedKeyId(blob) : undefined;
    if (blobKeyId === undefined) fail('InvalidCiphertext', 'the wrapped key is not a local-provider blob', requestId);
    if (blobKeyId !== key.keyId) {
      fail('InvalidCiphertext', `the wrapped key was not wrapped by ${keyArn(key.keyId)}`, requestId);
    }
    const dataKey = unwrapDataKey(key.material, wrappedKey, context);
    if (!dataKey) {
      fail('InvalidCiphertext', 'the wrapped key cannot be unwrapped with this key and encryption context', requestId);
    }
    return dataKey;
  }

  /** Key UUID, key ARN, alias name or alias ARN -> key. */
  private resolve(keyId: string, requestId: string, label = 'keyId'): StoredKey {
    this.assertOpen(requestId);
    guard(() => assertWellFormedKeyId(keyId, label), requestId);
    const local = keyId.startsWith(LOCAL_ARN_PREFIX) ? keyId.slice(LOCAL_ARN_PREFIX.length) : keyId;
    let uuid: string | undefined;
    if (local.startsWith('alias/')) uuid = this.store.aliases.get(local);
    else if (local.startsWith('key/')) uuid = local.slice('key/'.length);
    else if (!local.startsWith('arn:')) uuid = local;
    const key = uuid === undefined ? undefined : this.store.keys.get(uuid);
    if (!key) fail('KeyNotFound', `key ${keyId} does not exist`, requestId);
    return key;
  }

  /** Admin operations on keys take a key id or key ARN, as KMS's do (no aliases). */
  private keyByIdOrArn(keyId: string, requestId: string): StoredKey {
    const key = this.resolve(keyId, requestId);
    const plain = keyId.startsWith(LOCAL_ARN_PREFIX) ? keyId.slice(LOCAL_ARN_PREFIX.length) : keyId;
    if (plain.startsWith('alias/')) fail('InvalidRequest', 'expected a key id or key ARN, not an alias', requestId);
    return key;
  }

  private checkAliasName(aliasName: string, requestId: string): void {
    if (typeof aliasName !== 'string' || !isValidAliasName(aliasName)) {
      fail('InvalidRequest', 'alias names are alias/ followed by 1-250 of A-Z a-z 0-9 / _ - (alias/aws/ is reserved)', requestId);
    }
  }

  private pointAlias(aliasName: string, targetKeyId: string, requestId: string): KeyAlias {
    const key = this.keyByIdOrArn(targetKeyId, requestId);
    if (key.state === 'PendingDeletion') fail('KeyUnavailableState', `key ${key.keyId} is pending deletion`, requestId);
    this.commit({ keys: this.store.keys, aliases: withEntry(this.store.aliases, aliasName, key.keyId) });
    return { aliasName, aliasArn: `${LOCAL_ARN_PREFIX}${aliasName}`, keyArn: keyArn(key.keyId) };
  }

  private changeState(keyId: string, state: 'Enabled' | 'Disabled'): LocalKeyInfo {
    const requestId = randomUUID();
    const key = this.keyByIdOrArn(keyId, requestId);
    if (key.state === 'PendingDeletion') fail('KeyUnavailableState', `key ${key.keyId} is pending deletion`, requestId);
    return this.replaceKey({ ...key, state });
  }

  private replaceKey(key: StoredKey): LocalKeyInfo {
    this.commit({ keys: withEntry(this.store.keys, key.keyId, key), aliases: this.store.aliases });
    return info(key);
  }

  /** File first, memory second: if the write fails, nothing changed anywhere. */
  private commit(next: KeystoreData): void {
    this.assertOpen(randomUUID());
    saveKeystore(this.path, next);
    this.store = next;
  }

  private assertOpen(requestId: string): void {
    if (this.closed) fail('Unavailable', 'the local key provider is closed', requestId);
  }
}

function initialKeystore(): KeystoreData {
  const key = newKey();
  return { keys: new Map([[key.keyId, key]]), aliases: new Map([[DEFAULT_ALIAS, key.keyId]]) };
}

function newKey(): StoredKey {
  return {
    keyId: randomUUID(),
    material: randomBytes(MASTER_KEY_BYTES),
    state: 'Enabled',
    creationDate: new Date().toISOString(),
  };
}

function keyArn(keyId: string): string {
  return `${LOCAL_ARN_PREFIX}key/${keyId}`;
}

function info(key: StoredKey): LocalKeyInfo {
  return {
    keyId: key.keyId,
    keyArn: keyArn(key.keyId),
    state: key.state,
    creationDate: key.creationDate,
    ...(key.deletionDate ? { deletionDate: key.deletionDate } : {}),
  };
}

function withEntry<V>(map: ReadonlyMap<string, V>, key: string, value: V): Map<string, V> {
  const copy = new Map(map);
  copy.set(key, value);
  return copy;
}

function fail(code: KmsErrorCode, message: string, requestId: string): never {
  throw new KmsError(code, message, requestId);
}

/** Re-throws a validation KmsError with this call's requestId attached. */
function guard(check: () => void, requestId: string): void {
  try {
    check();
  } catch (error) {
    if (error instanceof KmsError) throw new KmsError(error.code, error.message, requestId);
    throw error;
  }
}

