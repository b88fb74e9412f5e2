/**
 * Reading files made by `openssl enc -aes-256-cbc` (`-aes256`) with a password: the manual
 * envelope recipe's payloads (docs/MIGRATION.md).
 *
 * Layout: "Salted__" || 8-byte salt || AES-256-CBC ciphertext with PKCS#7 padding; with
 * `-nosalt`, the ciphertext alone. The key and IV come from the password by one of:
 * - EVP_BytesToKey with MD5, one round (OpenSSL before 1.1.0, or `-md md5`);
 * - EVP_BytesToKey with SHA-256, one round (OpenSSL 1.1.0 and later, `-md sha256`);
 * - PBKDF2-HMAC-SHA-256 (`-pbkdf2`, `-iter N`, 10000 when `-iter` is not given).
 * OpenSSL takes the password as the C string it was given (`-k`, `-pass pass:`): its bytes up
 * to the first NUL; `-pass file:` reads the file's first line, without its newline.
 *
 * CBC has no integrity: the only check a decryption can make is the padding of the last block,
 * which a wrong key or derivation passes about once in 256 tries (docs/MIGRATION.md says what
 * that means for detection). Nothing here answers a network caller (docs/SECURITY.md).
 */
import { createDecipheriv, createHash, pbkdf2Sync } from 'node:crypto';
import { open } from 'node:fs/promises';
import { Transform, type TransformCallback } from 'node:stream';

export const SALT_MAGIC = Buffer.from('Salted__', 'ascii');
export const SALT_BYTES = 8;
/** "Salted__" and the salt. */
export const SALTED_HEADER_BYTES = SALT_MAGIC.length + SALT_BYTES;
export const BLOCK_BYTES = 16;
const KEY_BYTES = 32;
const IV_BYTES = 16;
export const DEFAULT_PBKDF2_ITERATIONS = 10_000;
/** An upper bound that keeps a typo (or a hostile manifest) from burning minutes per file. */
export const MAX_PBKDF2_ITERATIONS = 10_000_000;

export type OpensslKdf = 'pbkdf2' | 'sha256' | 'md5';
export const OPENSSL_KDFS: readonly OpensslKdf[] = ['pbkdf2', 'sha256', 'md5'];

export interface KdfSpec {
  kdf: OpensslKdf;
  /** PBKDF2 rounds (`-iter`); ignored by the EVP_BytesToKey derivations. */
  iterations: number;
}

/** The order detection tries: newest first (it tries all and accepts only a single fit, so the order only decides the report's wording). */
export function detectionCandidates(iterations = DEFAULT_PBKDF2_ITERATIONS): KdfSpec[] {
  return OPENSSL_KDFS.map((kdf) => ({ kdf, iterations }));
}

export function describeKdf(spec: KdfSpec): string {
  return spec.kdf === 'pbkdf2' ? `pbkdf2 (sha256, ${spec.iterations} iterations)` : `EVP_BytesToKey (${spec.kdf})`;
}

/** Parses `--kdf` (md5 | sha256 | pbkdf2) with `--iter`. */
export function parseKdf(name: string, iterations = DEFAULT_PBKDF2_ITERATIONS): KdfSpec {
  if (!(OPENSSL_KDFS as readonly string[]).includes(name)) throw new OpensslEncError('BadOption', `--kdf must be one of ${OPENSSL_KDFS.join(', ')}, not "${name}"`);
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > MAX_PBKDF2_ITERATIONS) {
    throw new OpensslEncError('BadOption', `--iter must be an integer from 1 to ${MAX_PBKDF2_ITERATIONS}`);
  }
  return { kdf: name as OpensslKdf, iterations };
}

/** How the data key was given to OpenSSL as a password. */
export type PasswordForm = 'base64' | 'raw';

/**
 * The password bytes OpenSSL used, from the 32-byte data key. `base64`: the text
 * `aws kms generate-data-key` prints as Plaintext (`-k "$PlaintextKey"`, `-pass pass:`, or
 * `-pass file:` on a file holding that text). `raw`: `-pass file:` on the decoded key, which
 * OpenSSL reads as a line: up to the first newline or NUL byte. The caller zeroes the result.
 */
export function opensslPassword(dataKey: Buffer, form: PasswordForm): Buffer {
  if (form === 'base64') return Buffer.from(dataKey.toString('base64'), 'ascii');
  let end = dataKey.length;
  for (let i = 0; i < dataKey.length; i++) {
    if (dataKey[i] === 0x00 || dataKey[i] === 0x0a) {
      end = i;
      break;
    }
  }
  return Buffer.from(dataKey.subarray(0, end));
}

/** Why a file could not be read; `code` is stable (the migration report carries it). */
export type OpensslEncErrorCode =
  | 'BadOption'
  | 'NoSaltHeader'
  | 'Truncated'
  | 'BadPadding'
  | 'NoDerivationFits'
  | 'AmbiguousDerivation';

export class OpensslEncError extends Error {
  override readonly name = 'OpensslEncError';
  constructor(
    readonly code: OpensslEncErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * OpenSSL's EVP_BytesToKey with one round: D_i = H(D_{i-1} || password || salt), concatenated
 * until `length` bytes. A few lines; the npm packages for it only do MD5.
 */
export function evpBytesToKey(digest: 'md5' | 'sha256', password: Buffer, salt: Buffer | undefined, length: number): Buffer {
  const out = Buffer.alloc(length);
  let filled = 0;
  let previous = Buffer.alloc(0);
  while (filled < length) {
    const hash = createHash(digest);
    hash.update(previous);
    hash.update(password);
    if (salt) hash.update(salt);
    const block = hash.digest();
    previous.fill(0);
    previous = block;
    filled += block.copy(out, filled);
  }
  previous.fill(0);
  return out;
}

/** Key (32) || IV (16), as `openssl enc -aes-256-cbc` derives them. The caller zeroes it. */
export function deriveKeyAndIv(password: Buffer, salt: Buffer | undefined, spec: KdfSpec): Buffer {
  const length = KEY_BYTES + IV_BYTES;
  if (spec.kdf === 'pbkdf2') return pbkdf2Sync(password, salt ?? Buffer.alloc(0), spec.iterations, length, 'sha256');
  return evpBytesToKey(spec.kdf, password, salt, length);
}

/** What the start and the end of a file say, read without reading the rest. */
export interface EncLayout {
  /** The salt, or undefined when the file has no "Salted__" header. */
  salt: Buffer | undefined;
  /** Where the CBC ciphertext starts: 16 with a salt header, 0 without. */
  bodyOffset: number;
  bodyBytes: number;
  /** The block before the last one (undefined when the body is one block: the IV plays its part). */
  penultimateBlock: Buffer | undefined;
  lastBlock: Buffer;
}

/** Reads the header and the last two blocks of `path`; throws when the length cannot be an enc file's. */
export async function readEncLayout(path: string): Promise<EncLayout> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const head = Buffer.alloc(Math.min(size, SALTED_HEADER_BYTES));
    await handle.read(head, 0, head.length, 0);
    const salted = head.length === SALTED_HEADER_BYTES && head.subarray(0, SALT_MAGIC.length).equals(SALT_MAGIC);
    const bodyOffset = salted ? SALTED_HEADER_BYTES : 0;
    const bodyBytes = size - bodyOffset;
    if (bodyBytes < BLOCK_BYTES || bodyBytes % BLOCK_BYTES !== 0) {
      throw new OpensslEncError(
        'Truncated',
        `the ciphertext is ${bodyBytes} bytes after the ${salted ? 'salt header' : 'start'}, not a positive multiple of 16: the file is truncated or not made by openssl enc -aes-256-cbc`,
      );
    }
    const tailBytes = Math.min(bodyBytes, 2 * BLOCK_BYTES);
    const tail = Buffer.alloc(tailBytes);
    await handle.read(tail, 0, tailBytes, size - tailBytes);
    return {
      salt: salted ? Buffer.from(head.subarray(SALT_MAGIC.length)) : undefined,
      bodyOffset,
      bodyBytes,
      penultimateBlock: tailBytes === 2 * BLOCK_BYTES ? tail.subarray(0, BLOCK_BYTES) : undefined,
      lastBlock: tail.subarray(tailBytes - BLOCK_BYTES),
    };
  } finally {
    await handle.close();
  }
}

/** True when PKCS#7 padding as OpenSSL writes it: n in 1..16, the last n bytes all n. */
function validPadding(block: Buffer): boolean {
  const n = block[BLOCK_BYTES - 1] as number;
  if (n < 1 || n > BLOCK_BYTES) return false;
  for (let i = BLOCK_BYTES - n; i < BLOCK_BYTES; i++) if (block[i] !== n) return false;
  return true;
}

/** Decrypts only the last block (CBC allows it: P_n = D(C_n) xor C_{n-1}) and checks its padding. */
function lastBlockPadsWell(layout: EncLayout, keyAndIv: Buffer): boolean {
  const decipher = createDecipheriv('aes-256-ecb', keyAndIv.subarray(0, KEY_BYTES), null);
  decipher.setAutoPadding(false);
  const plain = Buffer.concat([decipher.update(layout.lastBlock), decipher.final()]);
  const previous = layout.penultimateBlock ?? keyAndIv.subarray(KEY_BYTES);
  for (let i = 0; i < BLOCK_BYTES; i++) plain[i] = (plain[i] as number) ^ (previous[i] as number);
  const valid = validPadding(plain);
  plain.fill(0);
  return valid;
}

/**
 * The derivation to decrypt with. Pinned (`kdf` given): checked against the last block's
 * padding, so a wrong key or derivation fails before anything is written. Not pinned: every
 * candidate's last block is checked and exactly one must fit; none is a wrong key (or a
 * corrupted file, or a derivation not tried), two or more is ambiguous and needs `--kdf`.
 * A file without "Salted__" is never detected: unsalted derivation must be asked for.
 */
export function chooseKdf(layout: EncLayout, password: Buffer, pinned: KdfSpec | undefined, candidates: KdfSpec[]): KdfSpec {
  if (!layout.salt && !pinned) {
    throw new OpensslEncError(
      'NoSaltHeader',
      'the file has no "Salted__" header (made with -nosalt, or not by openssl enc): give --kdf to decrypt it as unsalted',
    );
  }
  const fits = (spec: KdfSpec): boolean => {
    const keyAndIv = deriveKeyAndIv(password, layout.salt, spec);
    try {
      return lastBlockPadsWell(layout, keyAndIv);
    } finally {
      keyAndIv.fill(0);
    }
  };
  if (pinned) {
    if (!fits(pinned)) throw badPadding(describeKdf(pinned));
    return pinned;
  }
  const fitting = candidates.filter(fits);
  if (fitting.length === 1) return fitting[0] as KdfSpec;
  if (fitting.length === 0) {
    throw new OpensslEncError(
      'NoDerivationFits',
      `no key derivation gives valid padding (tried ${candidates.map(describeKdf).join(', ')}): wrong key file, a corrupted or truncated file, or another derivation (give --kdf and --iter)`,
    );
  }
  throw new OpensslEncError('AmbiguousDerivation', `more than one key derivation gives valid padding (${fitting.map(describeKdf).join(', ')}): give --kdf`);
}

function badPadding(kdf: string): OpensslEncError {
  return new OpensslEncError('BadPadding', `the padding is invalid after decryption with ${kdf}: wrong key file, wrong derivation, or a corrupted or truncated file`);
}

/**
 * The ciphertext body (from `bodyOffset`) in, plaintext out, in constant memory: Node's
 * AES-256-CBC decipher holds at most one block back (the one that may carry the padding).
 * A bad padding at the end errors the stream with BadPadding; no plaintext past the last full
 * block is released before the padding is checked.
 */
export class OpensslDecryptStream extends Transform {
  private readonly decipher;
  private readonly kdf: string;

  constructor(password: Buffer, salt: Buffer | undefined, spec: KdfSpec) {
    super();
    const keyAndIv = deriveKeyAndIv(password, salt, spec);
    try {
      this.decipher = createDecipheriv('aes-256-cbc', keyAndIv.subarray(0, KEY_BYTES), keyAndIv.subarray(KEY_BYTES));
    } finally {
      keyAndIv.fill(0);
    }
    this.kdf = describeKdf(spec);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const out = this.decipher.update(chunk);
    if (out.length > 0) this.push(out);
    callback();
  }

  override _flush(callback: TransformCallback): void {
    let last: Buffer;
    try {
      last = this.decipher.final();
    } catch {
      return callback(badPadding(this.kdf));
    }
    if (last.length > 0) this.push(last);
    callback();
  }
}
