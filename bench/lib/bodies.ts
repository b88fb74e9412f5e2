/** Request bodies: the same JSON shape for the baselines and the service. */
import { randomBytes } from 'node:crypto';
import { BENCH_CONTEXT } from './constants.js';

/** `{"plaintext": base64, "context": {...}}`: /v1/encrypt's body, also sent to (a) and (b). */
export function encryptBody(plaintext: Buffer): string {
  return JSON.stringify({ plaintext: plaintext.toString('base64'), context: BENCH_CONTEXT });
}

export function decryptBody(ciphertext: string): string {
  return JSON.stringify({ ciphertext });
}

/** Deterministic-size random plaintext (random so nothing compresses or dedupes). */
export function plaintextOf(bytes: number): Buffer {
  return randomBytes(bytes);
}

/**
 * The largest plaintext whose encrypt body still fits in `bodyLimit` bytes: base64 makes
 * 4 characters of every 3 bytes, and the JSON around it takes the rest.
 */
export function largestPlaintextFor(bodyLimit: number): number {
  const overhead = Buffer.byteLength(encryptBody(Buffer.alloc(0)));
  return Math.floor((bodyLimit - overhead) / 4) * 3;
}
