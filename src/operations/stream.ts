/**
 * Streaming encrypt and decrypt: the same authorization, cache and audit facts as encrypt and
 * decrypt, for a payload whose bytes have not arrived yet. Each returns a StreamSession: the
 * Transform that seals or opens the bytes, holding the stream's key (the edge never sees it),
 * and what the audit needs to record how the stream ended.
 *
 * The policy judges the size declared in Content-Length; a stream without one is judged at
 * STREAM_MAX_BYTES, so a rule with maxPlaintextBytes is never passed by leaving the length out.
 * A decrypt is judged on its ciphertext's length (an upper bound of the plaintext's).
 */
import { KEY_SET_PREFIX, keySetNameOf } from '../keys/key-sets.js';
import type { KeySetAuditDetails } from './audit-facts.js';
import { keySetFacts } from './encrypt.js';
import { unwrapThroughAny } from './key-set-unwrap.js';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { StreamAuditDetails } from './audit-facts.js';
import type { EncryptionContext } from '../kms/provider.js';
import { SegmentAuthenticationError, StreamOpener, StreamSealer, StreamTooLargeError, type StreamProgress } from '../format/stream-crypto.js';
import { DEFAULT_SEGMENT_SIZE } from '../format/stream-format.js';
import { TextFormDecoder } from '../format/stream-text-form.js';
import { withFacts, type Caller, type OperationDeps, type Outcome } from './operation.js';
import { assertExpectedContext, validContext } from './context.js';
import { ProblemError } from './errors.js';

export type { StreamProgress };

/** How a stream ended, as far as its bytes tell (the edge knows the rest: client gone, timeout). */
export type StreamEnd = Pick<StreamAuditDetails, 'outcome' | 'failedSegment'>;

/** One stream in progress: its output, its progress, and the hook awaited before its last bytes. */
export interface StreamSession {
  readonly direction: 'encrypt' | 'decrypt';
  readonly keyArn: string;
  readonly context: EncryptionContext;
  /** The response body: the stream ciphertext (encrypt) or verified plaintext (decrypt). */
  readonly output: Readable;
  readonly progress: StreamProgress;
  /** Awaited before the last bytes are released; a rejection ends the stream abnormally. */
  beforeEnd(hook: (progress: StreamProgress) => Promise<void>): void;
  /** What an error that ended the stream means, when the bytes explain it. */
  endOf(error: unknown): StreamEnd | undefined;
}

class Session implements StreamSession {
  private hook: ((progress: StreamProgress) => Promise<void>) | undefined;
  private hookSet!: () => void;
  /** The bytes may all be in before the edge has set its hook: the end waits for it. */
  private readonly hookReady = new Promise<void>((resolve) => (this.hookSet = resolve));

  constructor(
    readonly direction: 'encrypt' | 'decrypt',
    readonly keyArn: string,
    readonly context: EncryptionContext,
    readonly output: StreamSealer | StreamOpener,
  ) {}

  get progress(): StreamProgress {
    return this.output.progress;
  }

  beforeEnd(hook: (progress: StreamProgress) => Promise<void>): void {
    this.hook = hook;
    this.hookSet();
  }

  /** Given to the Transform at construction; the hook is set later, by the edge. */
  readonly runBeforeEnd = async (progress: StreamProgress): Promise<void> => {
    await this.hookReady;
    await this.hook?.(progress);
  };

  endOf(error: unknown): StreamEnd | undefined {
    if (error instanceof SegmentAuthenticationError) return { outcome: 'authentication-failed', failedSegment: error.segment };
    if (error instanceof StreamTooLargeError) return { outcome: 'too-large' };
    return undefined;
  }
}

export interface EncryptStreamInput {
  /** The plaintext as it arrives. */
  body: Readable;
  keyId: string | undefined;
  context: Readonly<Record<string, string>> | undefined;
  aad: Buffer | undefined;
  /** Content-Length, when the caller sent one. */
  declaredBytes: number | undefined;
  maxBytes: number;
}

export function startEncryptStream(deps: OperationDeps, caller: Caller, input: EncryptStreamInput): Promise<Outcome<StreamSession>> {
  return withFacts(caller, async (facts) => {
    const context = validContext(input.context);
    const keyId = input.keyId ?? deps.defaultKeyId;
    facts.requestParameters = { keyId, encryptionContext: context, aadBytes: input.aad?.length, plaintextBytes: input.declaredBytes };
    facts.stream = { phase: 'started' };
    const judgedBytes = input.declaredBytes ?? input.maxBytes;
    // Unknown length: charged as more than any cap, so the stream gets a data key of its own.
    const chargedBytes = input.declaredBytes ?? Number.MAX_SAFE_INTEGER;
    const keySetName = keySetNameOf(keyId);
    let started;
    if (keySetName !== undefined) {
      const set = deps.guard.authorizeKeySet(caller.policy, caller.principal, 'encrypt', keySetName, deps.keySets.get(keySetName), context, judgedBytes);
      facts.resolvedKeyId = keyId;
      facts.ruleId = set.ruleId;
      started = await deps.envelope.startStreamUnderSet(set, context, chargedBytes, caller.kms);
      facts.keySet = keySetFacts(deps, set.name, started.keySet!, !started.dataKey.cacheHit);
    } else {
      const { keyArn, ruleId } = await deps.guard.authorizeRequestedKey(caller.policy, caller.principal, 'encrypt', keyId, context, judgedBytes, caller.kms);
      facts.resolvedKeyId = keyArn;
      facts.ruleId = ruleId;
      started = await deps.envelope.startStream(keyArn, context, chargedBytes, caller.kms);
    }
    facts.dataKey = started.dataKey;
    facts.responseElements = { keyId: started.keyArn };
    let session: Session | undefined;
    const sealer = new StreamSealer({
      header: started.header,
      authenticatedHeader: started.authenticatedHeader,
      streamKey: started.streamKey,
      segmentSize: started.segmentSize,
      aad: input.aad,
      maxBytes: input.maxBytes,
      beforeEnd: (progress) => (session as Session).runBeforeEnd(progress),
    });
    session = new Session('encrypt', started.keyArn, context, sealer);
    // Errors reach the sealer (pipeline destroys it with them); the edge watches its output.
    pipeline(input.body, sealer).catch(() => undefined);
    return session;
  });
}

export interface DecryptStreamInput {
  /** The stream ciphertext (or its ev2: text form) as it arrives. */
  body: Readable;
  expectedContext: Readonly<Record<string, string>> | undefined;
  aad: Buffer | undefined;
  declaredBytes: number | undefined;
  maxBytes: number;
  /** Awaited once the header and the first segment are in, before any work on them (the request's turn). */
  beforeWork: () => Promise<void>;
}

/**
 * Reads the header and the first segment, authorizes, unwraps and verifies segment 0 before
 * it resolves: a wrong key, context or aad, or a tampered first segment, is still a clean error.
 */
export function startDecryptStream(deps: OperationDeps, caller: Caller, input: DecryptStreamInput): Promise<Outcome<StreamSession>> {
  let session: Session | undefined;
  // Only the sizes this service writes: a rewritten segment size is refused before it is buffered.
  const opener = new StreamOpener({ maxBytes: input.maxBytes, segmentSizes: [DEFAULT_SEGMENT_SIZE] });
  // Either form of a stream ciphertext: the bytes, or `ev2:` text (what a form or the UI sends).
  pipeline(input.body, new TextFormDecoder(), opener).catch(() => undefined);
  return withFacts(caller, async (facts) => {
    facts.requestParameters = { ciphertextBytes: input.declaredBytes };
    try {
      const header = await opener.header();
      facts.requestParameters = { keyId: header.keyArn, encryptionContext: header.context, aadBytes: input.aad?.length, ciphertextBytes: input.declaredBytes };
      facts.stream = { phase: 'started' };
      await opener.firstSegmentArrived();
      await input.beforeWork();
      const judgedBytes = input.declaredBytes ?? input.maxBytes;
      let key;
      let keyName = header.keyArn;
      if (header.keySet !== undefined) {
        keyName = KEY_SET_PREFIX + header.keySet;
        facts.requestParameters = { ...facts.requestParameters, keyId: keyName };
        const usable = await deps.guard.authorizeWrappedKeys(caller.policy, caller.principal, 'decrypt', header, deps.keySets.current, judgedBytes, caller.kms);
        facts.ruleId = usable[0]!.ruleId;
        assertExpectedContext(input.expectedContext, header.context);
        const details: KeySetAuditDetails = { name: header.keySet, keys: header.wrappedKeys.map((entry) => entry.keyArn) };
        facts.keySet = details;
        const opened = await unwrapThroughAny(deps, caller.kms, usable, header.context, details, (entry) => deps.envelope.openStream(header, caller.kms, entry));
        facts.ruleId = opened.ruleId;
        key = { ...opened.value, keyArn: keyName };
      } else {
        const { ruleId } = await deps.guard.authorizeStoredKey(caller.policy, caller.principal, 'decrypt', header.keyArn, header.context, judgedBytes, caller.kms);
        facts.ruleId = ruleId;
        assertExpectedContext(input.expectedContext, header.context);
        key = await deps.envelope.openStream(header, caller.kms);
      }
      facts.dataKey = key.dataKey;
      facts.responseElements = { keyId: keyName };
      session = new Session('decrypt', key.keyArn, header.context, opener);
      const started = session;
      opener.start({ streamKey: key.streamKey, aad: input.aad, beforeEnd: (progress) => started.runBeforeEnd(progress) });
      // The first segment is checked before the 200: a wrong aad is still a clean 422.
      await opener.firstSegment();
      return session;
    } catch (error) {
      opener.destroy();
      throw beforeTheAnswer(error);
    }
  });
}

/** A stream past STREAM_MAX_BYTES before the 200 is the caller's 413; anything else is as it came. */
function beforeTheAnswer(error: unknown): unknown {
  return error instanceof StreamTooLargeError ? new ProblemError(413, 'PayloadTooLarge', error.message) : error;
}
