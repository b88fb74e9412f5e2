/**
 * Client-side sealing into stream format 2 (docs/FORMAT.md), byte for byte what the service's
 * stream route writes: a data key from KMS (directly, or through /v1/datakey), a fresh message
 * id, HKDF-SHA-512 to the stream key and commitment, 64 KiB segments. The service's stream
 * route and `envelope decrypt` open it like their own.
 */
import { createReadStream } from 'node:fs';
import { createHash, timingSafeEqual } from 'node:crypto';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Context as EncryptionContext } from '../context-header.js';
import { DEFAULT_SEGMENT_SIZE, encodeStreamHeader } from '../../format/stream-format.js';
import { StreamOpener, StreamSealer, deriveStreamKeyMaterial, newMessageId, streamKeyFor } from '../../format/stream-crypto.js';

export interface IssuedKey {
  keyArn: string;
  wrappedKey: Buffer;
  /** 32 bytes; whoever asked for it zeroes it. */
  plaintextKey: Buffer;
}

/** A Transform from plaintext to a stream ciphertext under `key` (which it does not zero). */
export function sealerFor(key: IssuedKey, context: EncryptionContext): StreamSealer {
  const messageId = newMessageId();
  const material = deriveStreamKeyMaterial(key.plaintextKey, messageId);
  try {
    const { header, authenticatedHeader } = encodeStreamHeader(
      { keyArn: key.keyArn, wrappedKey: key.wrappedKey },
      context,
      messageId,
      material.subarray(32),
      DEFAULT_SEGMENT_SIZE,
    );
    return new StreamSealer({
      header,
      authenticatedHeader,
      streamKey: Buffer.from(material.subarray(0, 32)),
      segmentSize: DEFAULT_SEGMENT_SIZE,
      aad: undefined,
      maxBytes: Number.MAX_SAFE_INTEGER,
    });
  } finally {
    material.fill(0);
  }
}

export class VerifyError extends Error {
  override readonly name = 'VerifyError';
  constructor(
    readonly code: 'VerifyMismatch' | 'VerifyFailed',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Decrypts the stream ciphertext at `path` with the data key that sealed it and returns its
 * plaintext's SHA-256 and length. The header must carry that key's KMS ARN, wrapped key and
 * the context asked for: what a reader will unwrap is what was sealed.
 */
export async function digestOfSealed(
  path: string,
  key: IssuedKey,
  context: EncryptionContext,
  onBytes: (bytes: number) => void = () => undefined,
): Promise<{ sha256: string; bytes: number }> {
  const opener = new StreamOpener({ maxBytes: Number.MAX_SAFE_INTEGER, segmentSizes: [DEFAULT_SEGMENT_SIZE] });
  const hash = createHash('sha256');
  let bytes = 0;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      onBytes(chunk.length);
      chunk.fill(0);
      callback();
    },
  });
  const done = pipeline(createReadStream(path), opener, sink);
  try {
    const header = await opener.header();
    const sameKey = header.keyArn === key.keyArn && header.wrappedKey.length === key.wrappedKey.length && timingSafeEqual(header.wrappedKey, key.wrappedKey);
    if (!sameKey || JSON.stringify(sortedEntries(header.context)) !== JSON.stringify(sortedEntries(context))) {
      throw new VerifyError('VerifyFailed', 'the new ciphertext does not carry the key and context it was sealed with');
    }
    opener.start({ streamKey: streamKeyFor(key.plaintextKey, header), aad: undefined });
    await done;
  } catch (error) {
    opener.destroy();
    await done.catch(() => undefined);
    if (error instanceof VerifyError) throw error;
    throw new VerifyError('VerifyFailed', `the new ciphertext does not decrypt: ${(error as Error).message}`);
  }
  return { sha256: hash.digest('hex'), bytes };
}

function sortedEntries(context: EncryptionContext): [string, string][] {
  return Object.entries(context).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}
