/**
 * What a ciphertext's header says, without a key and without the service: format version, form
 * (binary or text), KMS key, context, segment size and count, sizes. Never a secret: the wrapped
 * key is named by its data key id (the audit log's `dataKeyId`, SHA-256 of the wrapped key),
 * not shown. Nothing here is verified (only a decrypt authenticates); a length that cannot be a
 * whole stream is reported as truncated.
 */
import { createHash } from 'node:crypto';
import { PassThrough, Writable, pipeline, type Readable } from 'node:stream';
import { EnvelopeError } from '../format/errors.js';
import { CIPHERTEXT_PREFIX, TAG_BYTES, parseCiphertext, parseEnvelope } from '../format/format.js';
import { MAX_STREAM_HEADER_BYTES, STREAM_FORMAT_VERSION, parseStreamHeader } from '../format/stream-format.js';
import { STREAM_TEXT_PREFIX, TextFormDecoder } from '../format/stream-text-form.js';
import { peek } from './peek.js';

export interface CiphertextDescription {
  formatVersion: 1 | 2;
  form: 'binary' | 'text';
  keyId: string;
  context: Record<string, string>;
  /** SHA-256(wrapped key), first 128 bits: the audit events of this data key carry the same id. */
  dataKeyId: string;
  wrappedKeyBytes: number;
  /** The input as read (text included). */
  ciphertextBytes: number;
  plaintextBytes: number | undefined;
  /** v2 only. */
  segmentSize?: number;
  segments?: number;
  /** v2: the length cannot be a whole stream (the last segment cut). A v1 message this short does not parse at all. */
  truncated?: boolean;
}

/** A v1 message is read whole (the service bounds it by BODY_LIMIT_BYTES); more than this is not one. */
const MAX_V1_BYTES = 64 * 1024 * 1024;

export function dataKeyIdOf(wrappedKey: Buffer): string {
  return createHash('sha256').update(wrappedKey).digest('hex').slice(0, 32);
}

export async function describeCiphertext(input: Readable): Promise<CiphertextDescription> {
  const prefixLength = Math.max(CIPHERTEXT_PREFIX.length, STREAM_TEXT_PREFIX.length);
  const { head, rest } = await peek(input, prefixLength);
  const start = head.subarray(0, prefixLength).toString('latin1');
  if (start.startsWith(STREAM_TEXT_PREFIX) || head[0] === STREAM_FORMAT_VERSION) return describeStream(rest, start.startsWith(STREAM_TEXT_PREFIX) ? 'text' : 'binary');
  return describeMessage(rest, start.startsWith(CIPHERTEXT_PREFIX) ? 'text' : 'binary');
}

async function describeStream(input: Readable, form: 'binary' | 'text'): Promise<CiphertextDescription> {
  let ciphertextBytes = 0;
  let decodedBytes = 0;
  const headChunks: Buffer[] = [];
  let headBytes = 0;
  const counted = new PassThrough();
  counted.on('data', (chunk: Buffer) => (ciphertextBytes += chunk.length));
  await new Promise<void>((resolve, reject) =>
    pipeline(
      input,
      counted,
      new TextFormDecoder(),
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          decodedBytes += chunk.length;
          if (headBytes < MAX_STREAM_HEADER_BYTES) {
            headChunks.push(chunk);
            headBytes += chunk.length;
          }
          callback();
        },
      }),
      (error) => (error ? reject(error) : resolve()),
    ),
  );
  const header = parseStreamHeader(Buffer.concat(headChunks));
  const body = decodedBytes - header.length;
  const segmentBytes = header.segmentSize + TAG_BYTES;
  const segments = Math.max(1, Math.ceil(body / segmentBytes));
  const last = body - (segments - 1) * segmentBytes;
  const truncated = last < TAG_BYTES || (last === TAG_BYTES && segments > 1);
  return {
    formatVersion: 2,
    form,
    keyId: header.keyArn,
    context: { ...header.context },
    dataKeyId: dataKeyIdOf(header.wrappedKey),
    wrappedKeyBytes: header.wrappedKey.length,
    ciphertextBytes,
    plaintextBytes: truncated ? undefined : body - segments * TAG_BYTES,
    segmentSize: header.segmentSize,
    segments,
    truncated,
  };
}

async function describeMessage(input: Readable, form: 'binary' | 'text'): Promise<CiphertextDescription> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of input as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > MAX_V1_BYTES) throw new EnvelopeError('UnsupportedFormat', 'not a ciphertext of this service (no stream header, and larger than any message)');
    chunks.push(chunk);
  }
  const bytes = Buffer.concat(chunks);
  const envelope = form === 'text' ? parseCiphertext(bytes.toString('latin1').trimEnd()) : parseEnvelope(bytes);
  return {
    formatVersion: 1,
    form,
    keyId: envelope.keyArn,
    context: { ...envelope.context },
    dataKeyId: dataKeyIdOf(envelope.wrappedKey),
    wrappedKeyBytes: envelope.wrappedKey.length,
    ciphertextBytes: length,
    plaintextBytes: envelope.body.length,
  };
}
