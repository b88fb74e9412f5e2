/**
 * Bounds on everything a ciphertext header can carry. The parser checks each length against
 * these before it allocates or slices anything, so a hostile ciphertext cannot make the
 * service allocate more than the request body it already holds.
 */
export const ENVELOPE_LIMITS = {
  /** KMS key ARNs are at most ~2 KiB (alias ARNs are shorter). */
  maxKeyArnBytes: 2048,
  /** KMS CiphertextBlob is at most 6144 bytes. */
  maxWrappedKeyBytes: 6144,
  maxContextPairs: 64,
  maxContextKeyBytes: 256,
  maxContextValueBytes: 2048,
  /** KMS allows roughly 8 KiB of encryption context in total. */
  maxContextTotalBytes: 8192,
  /** Key-set key block (docs/FORMAT.md): wrapped keys in one ciphertext. */
  maxWrappedKeys: 8,
  /** Key-set key block: the set's name, ASCII letters, digits, `.`, `_`, `-`. */
  maxKeySetNameBytes: 64,
  /** Key-set key block: all of it, marker to last wrapped key. */
  maxKeySetBlockBytes: 16384,
} as const;
