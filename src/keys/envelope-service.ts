/**
 * The envelope service: encrypt, decrypt, rewrap and data-key issue, with KMS data keys served
 * from the cache. It knows nothing of HTTP or policy; callers authorize first and pass the key
 * ARN they authorized.
 */
import { canonicalContextKey } from '../format/context.js';
import {
  CachedDataKey,
  DataKeyCache,
  dataKeyIdOf,
  type CacheEntryView,
  type CacheKind,
  type CacheLimits,
  type CacheRequester,
  type DataKeyMaterial,
  type KeyUse,
  type SeededCopy,
} from './data-key-cache.js';
import { FailedUnwraps } from './failed-unwraps.js';
import {
  encodeEnvelopePrefix,
  encodeRewrapped,
  parseCiphertext,
  parseEnvelope,
  toCiphertextString,
  type EnvelopePrefix,
  type KeyBlock,
  type ParsedEnvelope,
} from '../format/format.js';
import type { KmsTrace } from './kms-trace.js';
import { deriveMessageKeyMaterial, openMessage, sealMessage } from '../format/message-crypto.js';
import { EnvelopeError } from '../format/errors.js';
import { timingSafeEqual } from 'node:crypto';
import { deriveStreamKeyMaterial, newMessageId, streamKeyFor } from '../format/stream-crypto.js';
import { DEFAULT_SEGMENT_SIZE, encodeStreamHeader, type StreamHeader } from '../format/stream-format.js';
import type { EncryptionContext, KeyProvider, KmsOperation } from '../kms/provider.js';
import { KmsError } from '../kms/errors.js';
import { ATTR, inSpan, spansEnabled } from '../telemetry/spans.js';
import type { KeyBlockFields } from '../format/format.js';
import { makeKeySetDataKey, type KeySetDataKey } from './key-set-data-key.js';
import { KEY_SET_PREFIX, type KeySet } from './key-sets.js';

/**
 * How the data key behind one operation was obtained. Its KMS request ids (the audit trail's
 * CloudTrail link) go to the request's KmsTrace.
 */
export interface DataKeyReport {
  dataKeyId: string;
  cacheHit: boolean;
  coalesced: boolean;
}

export interface EncryptResult {
  ciphertext: string;
  keyArn: string;
  dataKey: DataKeyReport;
}

export interface EnvelopeResult {
  /** The binary envelope (the bytes the text form base64url-encodes). */
  envelope: Buffer;
  /** The key ARN, or `keyset/NAME` for a key set. */
  keyArn: string;
  dataKey: DataKeyReport;
  /** Under a key set: its data key's wrapped keys and how they were made. */
  keySet?: KeySetDataKey;
}

export interface DecryptResult {
  /** The caller owns this buffer and should zero it once it is sent. */
  plaintext: Buffer;
  keyArn: string;
  context: EncryptionContext;
  dataKey: DataKeyReport;
}

export interface RewrapResult {
  ciphertext: string;
  keyArn: string;
  dataKey: DataKeyReport;
}

/** A stored data key unwrapped for a caller that decrypts client-side (POST /v1/unwrap). */
export interface UnwrappedKey {
  keyArn: string;
  /** 32 bytes; the caller owns it and must zero it. */
  plaintextKey: Buffer;
  dataKey: DataKeyReport;
}

export interface IssuedDataKey {
  keyArn: string;
  wrappedKey: Buffer;
  /** Present only when asked for; the caller owns it and must zero it. */
  plaintextKey?: Buffer;
  dataKey: DataKeyReport;
}

/** A stream's key, derived from its data key: the data key itself never leaves the cache. */
export interface StreamKey {
  /** The 32-byte stream key; the caller zeroes it. */
  streamKey: Buffer;
  keyArn: string;
  dataKey: DataKeyReport;
}

export interface SealingStream extends StreamKey {
  keySet?: KeySetDataKey;
  header: Buffer;
  authenticatedHeader: Buffer;
  segmentSize: number;
}

export interface EnvelopeCaches {
  encrypt: DataKeyCache;
  decrypt: DataKeyCache;
}

/** One cache as the admin API sees it: entries without keys; `contextKey` is for counting only. */
export interface CacheView {
  kind: CacheKind;
  limits: Readonly<CacheLimits>;
  counts: { hits: number; misses: number };
  entries: Array<CacheEntryView & { contextKey: string }>;
}

/** Which cached data keys to drop; absent fields match everything. */
export interface EvictionSelector {
  /** Every name of the KMS key (its ARN at least). */
  keyNames?: readonly string[];
  context?: EncryptionContext;
}

export interface EnvelopeOptions {
  /**
   * Read your writes without KMS: a data key encrypt generates or reuses is also offered to the
   * decrypt cache (seedDecrypt below). Default true.
   */
  seedDecryptCache?: boolean;
  /** How long a key set's data key missing some keys may be cached (KEY_SET_PARTIAL_MAX_AGE_MS). */
  partialMaxAgeMs?: number;
}

export class EnvelopeService {
  private readonly failedUnwraps = new FailedUnwraps();
  /** Each encrypt key's decrypt-cache partition (computed once per key) and its seeded copy there. */
  private readonly decryptSeeds = new WeakMap<CachedDataKey, { partition: string; copy?: SeededCopy | undefined }>();
  private readonly seeding: boolean;
  private readonly partialMaxAgeMs: number;

  constructor(
    private readonly provider: KeyProvider,
    private readonly caches: EnvelopeCaches,
    options: EnvelopeOptions = {},
  ) {
    this.seeding = options.seedDecryptCache ?? true;
    this.partialMaxAgeMs = options.partialMaxAgeMs ?? 10_000;
  }

  /**
   * Encrypts under a key set: its data key (cached, with every wrapped key) seals the message
   * and the key-set block carries all its wrapped keys.
   */
  async encryptUnderSet(set: KeySet, plaintext: Buffer, context: EncryptionContext, aad: Buffer | undefined, trace: KmsTrace): Promise<EnvelopeResult> {
    return this.caches.encrypt.use(
      setPartition(set, context),
      plaintext.length,
      () => makeKeySetDataKey(this.provider, set, context, this.partialMaxAgeMs),
      (use) => {
        const details = use.entry.details as KeySetDataKey;
        return {
          envelope: sealMessage(use.entry.plaintextKey, setPrefixOf(use.entry, context), plaintext, aad),
          keyArn: KEY_SET_PREFIX + set.name,
          dataKey: report(use, trace),
          keySet: details,
        };
      },
      setRequesterOf(trace, set),
    );
  }

  /** startStream() under a key set. */
  async startStreamUnderSet(set: KeySet, context: EncryptionContext, bytes: number, trace: KmsTrace): Promise<SealingStream> {
    return this.caches.encrypt.use(
      setPartition(set, context),
      bytes,
      () => makeKeySetDataKey(this.provider, set, context, this.partialMaxAgeMs),
      (use) => {
        const details = use.entry.details as KeySetDataKey;
        return { ...sealingStream(use, context, details.keyBlock, KEY_SET_PREFIX + set.name, trace), keySet: details };
      },
      setRequesterOf(trace, set),
    );
  }

  /** True when the decrypt cache holds the data key of this wrapped key (no KMS call to use it). */
  holdsKeyFor(entry: KeyBlockFields, context: EncryptionContext): boolean {
    return this.caches.decrypt.holds(unwrapPartition({ ...entry, context }));
  }

  /** Encrypts to the text form (`ev1:` + base64url), as the JSON API carries it. */
  async encrypt(keyArn: string, plaintext: Buffer, context: EncryptionContext, aad: Buffer | undefined, trace: KmsTrace): Promise<EncryptResult> {
    const sealed = await this.encryptToEnvelope(keyArn, plaintext, context, aad, trace);
    return { ciphertext: toCiphertextString(sealed.envelope), keyArn: sealed.keyArn, dataKey: sealed.dataKey };
  }

  /** Encrypts to the binary envelope itself (docs/FORMAT.md), as the binary API carries it. */
  encryptToEnvelope(
    keyArn: string,
    plaintext: Buffer,
    context: EncryptionContext,
    aad: Buffer | undefined,
    trace: KmsTrace,
  ): Promise<EnvelopeResult> {
    // Not async: the cache's promise is returned as it is, without another wrapping one.
    const partition = `${keyArn}\u0000${canonicalContextKey(context)}`;
    const fetch = async (): Promise<DataKeyMaterial> => this.provider.generateDataKey(keyArn, context);
    return this.lookup('encrypt', () =>
      this.caches.encrypt.use(
        partition,
        plaintext.length,
        fetch,
        (use) => {
          this.seedDecrypt(use.entry, context, trace);
          return {
            envelope: sealMessage(use.entry.plaintextKey, prefixOf(use.entry, context), plaintext, aad),
            keyArn: use.entry.keyArn,
            dataKey: report(use, trace),
          };
        },
        requesterOf(trace, 'GenerateDataKey'),
      ),
    );
  }

  /**
   * Starts a stream: a fresh message id, its key and commitment from a (cached) data key, and
   * the header. `bytes` (the declared plaintext size, or more than the cap when unknown) is
   * charged against the data key's byte cap; a stream larger than the cap gets a key of its own.
   */
  async startStream(keyArn: string, context: EncryptionContext, bytes: number, trace: KmsTrace): Promise<SealingStream> {
    const partition = `${keyArn}\u0000${canonicalContextKey(context)}`;
    const fetch = async (): Promise<DataKeyMaterial> => this.provider.generateDataKey(keyArn, context);
    return this.lookup('encrypt', () =>
      this.caches.encrypt.use(
        partition,
        bytes,
        fetch,
        (use) => {
          this.seedDecrypt(use.entry, context, trace);
          return sealingStream(use, context, { keyArn: use.entry.keyArn, wrappedKey: use.entry.wrappedKey }, use.entry.keyArn, trace);
        },
        requesterOf(trace, 'GenerateDataKey'),
      ),
    );
  }

  /**
   * Unwraps a stream's data key (through the decrypt cache) and checks its commitment; `entry`
   * is the wrapped key to use (default: the first, the only one of a single-key block).
   */
  async openStream(header: StreamHeader, trace: KmsTrace, entry: KeyBlockFields = header): Promise<StreamKey> {
    const stored = { keyArn: entry.keyArn, wrappedKey: entry.wrappedKey, context: header.context };
    const partition = unwrapPartition(stored);
    this.failedUnwraps.recall(partition);
    return this.lookup('decrypt', () =>
      this.caches.decrypt.use(
        partition,
        0,
        this.unwrapper(partition, stored),
        (use) => ({ streamKey: streamKeyFor(use.entry.plaintextKey, header), keyArn: use.entry.keyArn, dataKey: report(use, trace) }),
        requesterOf(trace, 'Decrypt'),
      ),
    );
  }

  /**
   * Offers an encrypt key to the decrypt cache, under the partition a decrypt of what it seals
   * looks up (key ARN, wrapped key, context): a decrypt of what was just written then needs no
   * KMS Decrypt. The decrypt cache keeps its own copy under its own limits, aged from the key's
   * creation and charged to this request's owner; a decrypt is still authorized on its own
   * (the caller needs decrypt on that key and context), and only a ciphertext carrying this
   * exact wrapped key and context finds the entry. Called inside the cache's synchronous use,
   * so the key is alive.
   */
  private seedDecrypt(entry: CachedDataKey, context: EncryptionContext, trace: KmsTrace): void {
    if (!this.seeding) return;
    let seeding = this.decryptSeeds.get(entry);
    if (seeding === undefined) {
      seeding = { partition: unwrapPartition({ keyArn: entry.keyArn, wrappedKey: entry.wrappedKey, context }) };
      this.decryptSeeds.set(entry, seeding);
    }
    // While its copy is alive the decrypt cache holds this key: nothing to offer (a reuse then
    // costs no cache lookup). Once the copy is gone (age, capacity, evict), it is offered again.
    if (seeding.copy && !seeding.copy.destroyed) return;
    seeding.copy = this.caches.decrypt.seed(seeding.partition, entry, trace.owner);
  }

  /** The cache's fetch for a stored key block: KMS Decrypt, a refusal remembered (failed-unwraps.ts). */
  private unwrapper(partition: string, stored: { keyArn: string; wrappedKey: Buffer; context: EncryptionContext }): () => Promise<DataKeyMaterial> {
    return async () => {
      try {
        const key = await this.provider.decryptDataKey(stored.wrappedKey, stored.keyArn, stored.context);
        // Copy: the stored wrappedKey is a view into the request's buffer.
        return { ...key, wrappedKey: Buffer.from(stored.wrappedKey) };
      } catch (error) {
        this.failedUnwraps.remember(partition, error);
        throw error;
      }
    };
  }

  /** Parses without decrypting, so the caller can authorize on the stored key and context. */
  parse(ciphertext: string): ParsedEnvelope {
    return parseCiphertext(ciphertext);
  }

  /** parse() for the binary envelope; the result's buffers are views into `bytes`. */
  parseBinary(bytes: Buffer): ParsedEnvelope {
    return parseEnvelope(bytes);
  }

  /** `entry`: the wrapped key to unwrap (default: the first, the only one of a single-key block). */
  async decrypt(envelope: ParsedEnvelope, aad: Buffer | undefined, trace: KmsTrace, entry: KeyBlockFields = envelope): Promise<DecryptResult> {
    const stored = { keyArn: entry.keyArn, wrappedKey: entry.wrappedKey, context: envelope.context };
    const partition = unwrapPartition(stored);
    this.failedUnwraps.recall(partition);
    return this.lookup('decrypt', () =>
      this.caches.decrypt.use(
        partition,
        0,
        this.unwrapper(partition, stored),
        (use) => ({
          plaintext: openMessage(use.entry.plaintextKey, envelope, aad),
          keyArn: use.entry.keyArn,
          context: envelope.context,
          dataKey: report(use, trace),
        }),
        requesterOf(trace, 'Decrypt'),
      ),
    );
  }

  /**
   * Re-wraps the data key under `destinationKeyArn` with KMS ReEncrypt: the plaintext data
   * key never leaves KMS and the payload is never decrypted; only the key block changes.
   */
  async rewrap(envelope: ParsedEnvelope, destinationKeyArn: string, trace: KmsTrace): Promise<RewrapResult> {
    // The same memory as decrypt: ReEncrypt fails to unwrap exactly when Decrypt does.
    const source = unwrapPartition(envelope);
    this.failedUnwraps.recall(source);
    const charged = trace.charge('ReEncrypt');
    if (charged) await charged;
    let rewrapped;
    try {
      rewrapped = await trace.inTurn(() =>
        this.provider.reEncryptDataKey(envelope.wrappedKey, envelope.keyArn, envelope.context, destinationKeyArn, envelope.context),
      );
    } catch (error) {
      this.failedUnwraps.remember(source, error);
      throw error;
    }
    trace.add(rewrapped.requestId);
    const bytes = encodeRewrapped({ keyArn: rewrapped.keyArn, wrappedKey: rewrapped.wrappedKey }, envelope.sealedPart);
    return {
      ciphertext: toCiphertextString(bytes),
      keyArn: rewrapped.keyArn,
      dataKey: { dataKeyId: dataKeyIdOf(rewrapped.wrappedKey), cacheHit: false, coalesced: false },
    };
  }

  /**
   * The data key behind one wrapped key of `envelope`, for a rewrap that must wrap it under
   * other keys (a key set, another region): unwrapped through the decrypt cache and checked
   * against the envelope's key commitment before it leaves the cache's callback, so a wrapped
   * key of another data key is never spread to new keys. The caller zeroes the copy.
   */
  async unwrapForRewrap(envelope: ParsedEnvelope, entry: KeyBlockFields, trace: KmsTrace): Promise<{ dataKey: Buffer; report: DataKeyReport }> {
    const stored = { keyArn: entry.keyArn, wrappedKey: entry.wrappedKey, context: envelope.context };
    const partition = unwrapPartition(stored);
    this.failedUnwraps.recall(partition);
    return this.caches.decrypt.use(
      partition,
      0,
      this.unwrapper(partition, stored),
      (use) => {
        assertCommits(use.entry.plaintextKey, envelope);
        return { dataKey: Buffer.from(use.entry.plaintextKey), report: report(use, trace) };
      },
      requesterOf(trace, 'Decrypt'),
    );
  }

  /** KMS Encrypt of `dataKey` under each of `keyArns` (same context), each call charged and in turn. */
  async wrapUnder(dataKey: Buffer, keyArns: readonly string[], context: EncryptionContext, trace: KmsTrace): Promise<KeyBlockFields[]> {
    for (const _ of keyArns) trace.charge('Encrypt');
    return Promise.all(
      keyArns.map(async (keyArn) => {
        const wrapped = await trace.inTurn(() => this.provider.encryptDataKey(dataKey, keyArn, context));
        trace.add(wrapped.requestId);
        return { keyArn, wrappedKey: wrapped.wrappedKey };
      }),
    );
  }

  /** A fresh data key for client-side encryption: never cached, never reused. */
  async issueDataKey(keyArn: string, context: EncryptionContext, includePlaintext: boolean, trace: KmsTrace): Promise<IssuedDataKey> {
    const charged = trace.charge('GenerateDataKey');
    if (charged) await charged;
    const key = await trace.inTurn(() => this.provider.generateDataKey(keyArn, context));
    trace.add(key.requestId);
    if (key.plaintextKey.length !== 32) {
      key.plaintextKey.fill(0);
      throw new KmsError('Unavailable', 'KMS returned a data key of the wrong length');
    }
    const dataKey = { dataKeyId: dataKeyIdOf(key.wrappedKey), cacheHit: false, coalesced: false };
    if (includePlaintext) return { keyArn: key.keyArn, wrappedKey: key.wrappedKey, plaintextKey: key.plaintextKey, dataKey };
    key.plaintextKey.fill(0);
    return { keyArn: key.keyArn, wrappedKey: key.wrappedKey, dataKey };
  }

  /** One cache lookup in its span, with how it went: hit, miss (this request called KMS) or coalesced. */
  private lookup<R extends { dataKey: DataKeyReport }>(kind: CacheKind, use: () => Promise<R>): Promise<R> {
    // With tracing off, not even the span's async wrapper (one promise and turn per request).
    if (!spansEnabled()) return use();
    return inSpan('datakey.cache', { [ATTR.cacheKind]: kind }, async (span) => {
      const result = await use();
      span.setAttribute(ATTR.cacheResult, result.dataKey.coalesced ? 'coalesced' : result.dataKey.cacheHit ? 'hit' : 'miss');
      return result;
    });
  }

  /**
   * Unwraps a stored data key for a caller that decrypts client-side: always KMS Decrypt
   * (never the cache, so a key handed out is one KMS call CloudTrail shows), a refusal
   * remembered like the decrypt path's.
   */
  async unwrapDataKey(stored: { keyArn: string; wrappedKey: Buffer; context: EncryptionContext }, trace: KmsTrace): Promise<UnwrappedKey> {
    const partition = unwrapPartition(stored);
    this.failedUnwraps.recall(partition);
    trace.charge('Decrypt');
    let key;
    try {
      key = await trace.inTurn(() => this.provider.decryptDataKey(stored.wrappedKey, stored.keyArn, stored.context));
    } catch (error) {
      this.failedUnwraps.remember(partition, error);
      throw error;
    }
    trace.add(key.requestId);
    if (key.plaintextKey.length !== 32) {
      key.plaintextKey.fill(0);
      throw new KmsError('Unavailable', 'KMS returned a data key of the wrong length');
    }
    return { keyArn: key.keyArn, plaintextKey: key.plaintextKey, dataKey: { dataKeyId: dataKeyIdOf(stored.wrappedKey), cacheHit: false, coalesced: false } };
  }

  /** Both caches, entry by entry, without key material. */
  cacheViews(): CacheView[] {
    return (['encrypt', 'decrypt'] as const).map((kind) => {
      const cache = this.caches[kind];
      return {
        kind,
        limits: cache.limitsInForce,
        counts: cache.counts,
        entries: cache.view().map((entry) => ({ ...entry, contextKey: contextKeyOf(kind, entry.partition) })),
      };
    });
  }

  /** Drops and zeroes the cached data keys `selector` matches, in both caches. */
  evict(selector: EvictionSelector): { encrypt: number; decrypt: number } {
    const names = selector.keyNames === undefined ? undefined : new Set(selector.keyNames);
    const contextKey = selector.context === undefined ? undefined : canonicalContextKey(selector.context);
    const matcher = (kind: CacheKind) => (partition: string, entry: CachedDataKey) =>
      (names === undefined || names.has(entry.keyArn) || names.has(partition.slice(0, partition.indexOf('\u0000')))) &&
      (contextKey === undefined || contextKeyOf(kind, partition) === contextKey);
    return { encrypt: this.caches.encrypt.evictWhere(matcher('encrypt')), decrypt: this.caches.decrypt.evictWhere(matcher('decrypt')) };
  }

  /** Zeroes every cached key (shutdown). */
  clear(): void {
    this.caches.encrypt.clear();
    this.caches.decrypt.clear();
  }
}

/**
 * The decrypt cache's partition: the wrapped key's bytes themselves (base64), not a hash of
 * them: exact, and no SHA-256 per decrypt. The ARN and wrapped key are bounded
 * (ENVELOPE_LIMITS), so is the string.
 */
function unwrapPartition(envelope: Pick<ParsedEnvelope, 'keyArn' | 'wrappedKey' | 'context'>): string {
  return `${envelope.keyArn}\u0000${envelope.wrappedKey.toString('base64')}\u0000${canonicalContextKey(envelope.context)}`;
}

/**
 * The canonical context of a partition: what follows the key ARN (encrypt) or the key ARN and
 * the wrapped key (decrypt); neither holds a NUL, so the split is exact.
 */
function contextKeyOf(kind: CacheKind, partition: string): string {
  const first = partition.indexOf('\u0000');
  const start = kind === 'encrypt' ? first : partition.indexOf('\u0000', first + 1);
  return partition.slice(start + 1);
}

/** The cache entry's owner and the budget a miss is charged to: the request's tenant (or principal). */
function requesterOf(trace: KmsTrace, operation: KmsOperation): CacheRequester {
  return new TraceRequester(trace, operation);
}

/** A class rather than an object of closures: built on every lookup, used only on a miss. */
class TraceRequester implements CacheRequester {
  readonly owner: string;
  constructor(
    private readonly trace: KmsTrace,
    private readonly operation: KmsOperation,
  ) {
    this.owner = trace.owner;
  }

  charge(): void | Promise<void> {
    return this.trace.charge(this.operation);
  }

  inTurn<T>(send: () => Promise<T>): Promise<T> {
    return this.trace.inTurn(send);
  }
}

/** The serialised header prefix, computed once per cached data key. */
function prefixOf(entry: CachedDataKey, context: EncryptionContext): EnvelopePrefix {
  entry.attachment ??= encodeEnvelopePrefix({ keyArn: entry.keyArn, wrappedKey: entry.wrappedKey }, context);
  return entry.attachment as EnvelopePrefix;
}

function report(use: KeyUse, trace: KmsTrace): DataKeyReport {
  trace.add(use.entry.kmsRequestId);
  for (const id of use.entry.kmsRequestIds) trace.add(id);
  return { dataKeyId: use.entry.dataKeyId, cacheHit: use.cacheHit, coalesced: use.coalesced };
}

/** A key set's encrypt partition: its name and configuration (a changed set never reuses an old key), and the context. */
function setPartition(set: KeySet, context: EncryptionContext): string {
  return `${KEY_SET_PREFIX}${set.name}#${set.fingerprint}\u0000${canonicalContextKey(context)}`;
}

/** A set's data key costs one KMS call per key of the set, all charged before the first starts. */
function setRequesterOf(trace: KmsTrace, set: KeySet): CacheRequester {
  return {
    owner: trace.owner,
    charge: () => {
      trace.charge('GenerateDataKey');
      for (let i = 1; i < set.keys.length; i++) trace.charge('Encrypt');
    },
    inTurn: (send) => trace.inTurn(send),
  };
}

function setPrefixOf(entry: CachedDataKey, context: EncryptionContext): EnvelopePrefix {
  entry.attachment ??= encodeEnvelopePrefix((entry.details as KeySetDataKey).keyBlock, context);
  return entry.attachment as EnvelopePrefix;
}

/** A stream's key and header from a data key, inside the cache's synchronous callback. */
function sealingStream(use: KeyUse, context: EncryptionContext, keyBlock: KeyBlock | KeyBlockFields, keyName: string, trace: KmsTrace): SealingStream {
  const messageId = newMessageId();
  const material = deriveStreamKeyMaterial(use.entry.plaintextKey, messageId);
  try {
    const { header, authenticatedHeader } = encodeStreamHeader(keyBlock, context, messageId, material.subarray(32), DEFAULT_SEGMENT_SIZE);
    return {
      header,
      authenticatedHeader,
      segmentSize: DEFAULT_SEGMENT_SIZE,
      streamKey: Buffer.from(material.subarray(0, 32)),
      keyArn: keyName,
      dataKey: report(use, trace),
    };
  } finally {
    material.fill(0);
  }
}

/** The format 1 key commitment check, on its own (openMessage does it before opening). */
function assertCommits(dataKey: Buffer, envelope: ParsedEnvelope): void {
  const material = deriveMessageKeyMaterial(dataKey, envelope.messageId);
  try {
    if (!timingSafeEqual(material.subarray(32), envelope.commitment)) {
      throw new EnvelopeError('KeyCommitmentMismatch', 'ciphertext does not commit to its data key');
    }
  } finally {
    material.fill(0);
  }
}
