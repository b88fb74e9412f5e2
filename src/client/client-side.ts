/**
 * Client-side mode: the payload is sealed and opened here, in stream format v2 (docs/FORMAT.md),
 * with the format's own code (src/format/), so what this seals the service's stream routes open
 * and the other way round. Only the data key crosses the network: from /v1/datakey
 * (`datakey:plaintext`) to seal, from /v1/unwrap (`datakey:unwrap`) to open. The data key is
 * zeroed once the stream key is derived from it; the stream key when the stream ends, however
 * it ends. (The key's base64 text in the JSON answer is a JavaScript string, which cannot be
 * zeroed; it is dropped at once.)
 */
import { PassThrough, pipeline, type Readable } from 'node:stream';
import { toContext } from '../format/context.js';
import { StreamOpener, StreamSealer, deriveStreamKeyMaterial, newMessageId, streamKeyFor } from '../format/stream-crypto.js';
import { DEFAULT_SEGMENT_SIZE, encodeStreamHeader, type StreamHeader } from '../format/stream-format.js';
import { TextFormDecoder } from '../format/stream-text-form.js';
import type { EnvelopeClient } from './client.js';
import type { Context } from './context-header.js';

const KEY_BYTES = 32;
/** No limit of our own: the format's 2^32 segments bound a stream. */
const UNBOUNDED = Number.MAX_SAFE_INTEGER;

export interface SealOptions {
  keyId?: string;
  context?: Context;
  /** Associated data, needed again to open; never sent anywhere. */
  aad?: Uint8Array;
  signal?: AbortSignal;
}

export interface OpenOptions {
  aad?: Uint8Array;
  /** Called with the header once it is parsed, before the key is asked for (e.g. to check the context). */
  onHeader?: (header: StreamHeader) => void | Promise<void>;
  signal?: AbortSignal;
}

/** The stream ciphertext of `plaintext`, sealed here. Errors (never ends) on any failure. */
export function sealStream(client: EnvelopeClient, plaintext: Readable, options: SealOptions = {}): Readable {
  const out = new PassThrough();
  (async () => {
    const issued = await client.dataKey({ keyId: options.keyId, context: options.context ? { ...options.context } : undefined, includePlaintext: true }, options);
    const dataKey = Buffer.from(issued.plaintextKey ?? '', 'base64');
    const messageId = newMessageId();
    let material: Buffer;
    try {
      if (dataKey.length !== KEY_BYTES) throw new Error('POST /v1/datakey answered without a 32-byte plaintext key');
      material = deriveStreamKeyMaterial(dataKey, messageId);
    } finally {
      dataKey.fill(0);
    }
    const streamKey = Buffer.from(material.subarray(0, KEY_BYTES));
    const commitment = Buffer.from(material.subarray(KEY_BYTES));
    material.fill(0);
    const { header, authenticatedHeader } = encodeStreamHeader(
      { keyArn: issued.keyId, wrappedKey: Buffer.from(issued.wrappedKey, 'base64') },
      toContext(options.context),
      messageId,
      commitment,
      DEFAULT_SEGMENT_SIZE,
    );
    const sealer = new StreamSealer({ header, authenticatedHeader, streamKey, segmentSize: DEFAULT_SEGMENT_SIZE, aad: aadOf(options.aad), maxBytes: UNBOUNDED });
    pipeline(plaintext, sealer, out, () => undefined);
  })().catch((error: unknown) => {
    plaintext.destroy();
    out.destroy(error as Error);
  });
  return out;
}

/**
 * The plaintext of a stream ciphertext (binary v2 or `ev2:` text), opened here with the data key
 * /v1/unwrap gives back. Releases only verified segments; errors (never ends) when a segment
 * fails, the stream is truncated, or the key cannot be had.
 */
export function openStream(client: EnvelopeClient, ciphertext: Readable, options: OpenOptions = {}): Readable {
  const opener = new StreamOpener({ maxBytes: UNBOUNDED });
  const out = new PassThrough();
  pipeline(ciphertext, new TextFormDecoder(), opener, out, () => undefined);
  opener
    .header()
    .then(async (header) => {
      await options.onHeader?.(header);
      const unwrapped = await client.unwrap(
        { keyId: header.keyArn, wrappedKey: header.wrappedKey.toString('base64'), context: { ...header.context } },
        options,
      );
      const dataKey = Buffer.from(unwrapped.plaintextKey, 'base64');
      let streamKey: Buffer;
      try {
        streamKey = streamKeyFor(dataKey, header);
      } finally {
        dataKey.fill(0);
      }
      if (opener.destroyed) {
        streamKey.fill(0);
        return;
      }
      opener.start({ streamKey, aad: aadOf(options.aad) });
    })
    .catch((error: unknown) => {
      if (!opener.destroyed) opener.destroy(error as Error);
    });
  return out;
}

function aadOf(aad: Uint8Array | undefined): Buffer | undefined {
  return aad === undefined ? undefined : Buffer.from(aad);
}
