/**
 * A forged envelope, as a hostile caller makes one: a genuine envelope whose wrapped key keeps
 * its leading bytes and ends in 16 random ones (where both providers' blobs carry their GCM
 * tag), so KMS finds the key but cannot unwrap: InvalidCiphertextException, which is what real
 * KMS answers any forgery.
 *
 * Why not an all-random wrapped key: local-kms reads the key id's length from the blob's first
 * byte in 8-bit arithmetic, and a first byte of 250-255 makes it panic and drop the connection.
 * The service then sees a socket hang-up (503 KmsUnavailable, rightly not remembered as a failed
 * unwrap) for 6 first bytes in 256: a flaky test that says nothing about the service.
 */
import { randomBytes } from 'node:crypto';
import { encodeRewrapped, parseCiphertext, toCiphertextString } from '../../src/format/format.js';

export function forgedCiphertext(genuineCiphertext: string): string {
  const genuine = parseCiphertext(genuineCiphertext);
  const wrappedKey = Buffer.concat([genuine.wrappedKey.subarray(0, -16), randomBytes(16)]);
  return toCiphertextString(encodeRewrapped({ keyArn: genuine.keyArn, wrappedKey }, genuine.sealedPart));
}
