/**
 * The wrapped data key of the manual recipe, in the forms `aws kms generate-data-key` leaves
 * it: raw bytes (`--output text --query CiphertextBlob | base64 -d > key`, or an SDK's
 * CiphertextBlob written out), its base64 text (`--query CiphertextBlob --output text > key`),
 * or the command's whole JSON answer (`> datakey.json`). Detected, never guessed between: a KMS
 * ciphertext blob is binary, so one that is all base64 characters does not occur.
 */
import { open } from 'node:fs/promises';

/** KMS ciphertext blobs are at most 6144 bytes; the JSON answer adds its plaintext key and names. */
export const MAX_WRAPPED_KEY_FILE_BYTES = 16 * 1024;

export type WrappedKeyEncoding = 'raw' | 'base64' | 'json';

export interface WrappedKey {
  blob: Buffer;
  encoding: WrappedKeyEncoding;
  /** The file is the whole JSON answer and holds the Plaintext key too (read, never used). */
  holdsPlaintext: boolean;
}

export class WrappedKeyFileError extends Error {
  override readonly name = 'WrappedKeyFileError';
  readonly code = 'BadWrappedKeyFile';
}

const BASE64_TEXT = /^[A-Za-z0-9+/]+={0,2}$/;

/** Parses a wrapped key file's bytes (see the module comment). */
export function parseWrappedKey(bytes: Buffer): WrappedKey {
  const text = bytes.toString('latin1').trim();
  if (text.startsWith('{')) return fromJson(text);
  if (text.length > 0 && text.length % 4 === 0 && BASE64_TEXT.test(text)) {
    return { blob: Buffer.from(text, 'base64'), encoding: 'base64', holdsPlaintext: false };
  }
  if (bytes.length === 0) throw new WrappedKeyFileError('the wrapped key file is empty');
  return { blob: Buffer.from(bytes), encoding: 'raw', holdsPlaintext: false };
}

function fromJson(text: string): WrappedKey {
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    throw new WrappedKeyFileError('the wrapped key file starts with "{" but is not JSON');
  }
  const blob = (answer as { CiphertextBlob?: unknown }).CiphertextBlob;
  if (typeof blob !== 'string' || !BASE64_TEXT.test(blob) || blob.length % 4 !== 0) {
    throw new WrappedKeyFileError('the wrapped key file is JSON without a base64 "CiphertextBlob"');
  }
  const holdsPlaintext = typeof (answer as { Plaintext?: unknown }).Plaintext === 'string';
  return { blob: Buffer.from(blob, 'base64'), encoding: 'json', holdsPlaintext };
}

/** Reads and parses a wrapped key file, refusing one larger than any wrapped key can be. */
export async function readWrappedKeyFile(path: string): Promise<WrappedKey> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    if (size > MAX_WRAPPED_KEY_FILE_BYTES) throw new WrappedKeyFileError(`the wrapped key file is ${size} bytes: larger than any KMS ciphertext blob`);
    const bytes = Buffer.alloc(size);
    await handle.read(bytes, 0, size, 0);
    const parsed = parseWrappedKey(bytes);
    bytes.fill(0); // the JSON form holds the plaintext key
    return parsed;
  } finally {
    await handle.close();
  }
}
