/**
 * Rewrap of a stream (format v2): only its key block changes, as with a v1 message. The key
 * block is outside every segment's associated data and bound by the key commitment (docs/
 * FORMAT.md; ARCHITECTURE decision 1), so the segments are copied byte for byte. The service's
 * POST /v1/rewrap takes v1 messages: the stream's key block, context, message id and
 * commitment travel in a v1 envelope with an empty body, which the service re-wraps without
 * opening (it never decrypts a payload to rewrap), under the same policy (`rewrap` on both
 * keys, the stored context). Output is the binary form.
 */
import { PassThrough, Transform, pipeline, type Readable } from 'node:stream';
import { COMMITMENT_BYTES, IV_BYTES, MESSAGE_ID_BYTES, TAG_BYTES, encodeEnvelopePrefix, parseCiphertext, toCiphertextString } from '../format/format.js';
import { MAX_STREAM_HEADER_BYTES, encodeStreamHeader, parseStreamHeader, type StreamHeader } from '../format/stream-format.js';
import { TextFormDecoder } from '../format/stream-text-form.js';
import type { EnvelopeClient } from './client.js';
import { peek } from './peek.js';

export function rewrapStream(client: EnvelopeClient, ciphertext: Readable, keyId: string | undefined, signal?: AbortSignal): Readable {
  const out = new PassThrough();
  const decoded = new TextFormDecoder();
  pipeline(ciphertext, decoded, () => undefined);
  (async () => {
    const { head, rest } = await peek(decoded, MAX_STREAM_HEADER_BYTES);
    const header = parseStreamHeader(head);
    const rewrapped = await client.rewrap({ ciphertext: carrierOf(header), ...(keyId ? { keyId } : {}) }, signal ? { signal } : {});
    const moved = parseCiphertext(rewrapped.ciphertext);
    const { header: newHeader } = encodeStreamHeader({ keyArn: moved.keyArn, wrappedKey: moved.wrappedKey }, header.context, header.messageId, header.commitment, header.segmentSize);
    let skip = header.length;
    let first = true;
    const swap = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        if (first) {
          first = false;
          this.push(newHeader);
        }
        if (skip >= chunk.length) {
          skip -= chunk.length;
          return callback();
        }
        const tail = chunk.subarray(skip);
        skip = 0;
        callback(null, tail);
      },
    });
    pipeline(rest, swap, out, () => undefined);
  })().catch((error: unknown) => {
    decoded.destroy();
    out.destroy(error as Error);
  });
  return out;
}

/** A v1 envelope carrying the stream's key block, context, message id and commitment, with an empty body. */
function carrierOf(header: StreamHeader): string {
  if (header.messageId.length !== MESSAGE_ID_BYTES || header.commitment.length !== COMMITMENT_BYTES) throw new Error('malformed stream header');
  const { prefix } = encodeEnvelopePrefix({ keyArn: header.keyArn, wrappedKey: header.wrappedKey }, header.context);
  return toCiphertextString(Buffer.concat([prefix, header.messageId, header.commitment, Buffer.alloc(IV_BYTES), Buffer.alloc(TAG_BYTES)]));
}
