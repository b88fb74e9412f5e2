/**
 * The `openssl` command line as the manual recipe runs it: the tests make their files with the
 * real tool, never with the code under test.
 */
import { spawnSync } from 'node:child_process';

/** `openssl enc` flags of each derivation the recipe's scripts use. */
export const OPENSSL_FLAGS = {
  md5: ['-md', 'md5'],
  sha256: ['-md', 'sha256'],
  pbkdf2: ['-pbkdf2'],
} as const;

export function opensslAvailable(): boolean {
  return spawnSync('openssl', ['version'], { encoding: 'utf8' }).status === 0;
}

/** `openssl enc -aes256 <flags> -k <password> -in <input> -out <output>`; throws with its stderr on failure. */
export function opensslEncrypt(input: string, output: string, password: string, flags: readonly string[]): void {
  run(['enc', '-aes256', ...flags, '-k', password, '-in', input, '-out', output]);
}

/** `openssl enc -aes256 -md sha256 -pass file:<passFile>`: OpenSSL reads the password as the file's first line. */
export function opensslEncryptWithPassFile(input: string, output: string, passFile: string): void {
  run(['enc', '-aes256', '-md', 'sha256', '-pass', `file:${passFile}`, '-in', input, '-out', output]);
}

/** True when `openssl enc -d` with these flags accepts the file (its padding check passes). */
export function opensslDecrypts(input: string, output: string, password: string, flags: readonly string[]): boolean {
  return spawnSync('openssl', ['enc', '-d', '-aes256', ...flags, '-k', password, '-in', input, '-out', output], { encoding: 'utf8' }).status === 0;
}

/** `openssl enc -P`: the salt, key and IV it derives (hex, upper case), without encrypting. */
export function opensslDerivation(password: string, flags: readonly string[], saltHex?: string): { salt?: string; key: string; iv: string } {
  const out = run(['enc', '-aes256', ...flags, '-k', password, '-P', ...(saltHex ? ['-S', saltHex] : ['-nosalt'])]);
  const field = (name: string) => new RegExp(`^${name}\\s*=\\s*([0-9A-F]+)$`, 'm').exec(out)?.[1];
  return { salt: field('salt'), key: field('key') ?? '', iv: field('iv') ?? '' };
}

export function run(args: string[]): string {
  const result = spawnSync('openssl', args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`openssl ${args[0]} failed: ${result.stderr}`);
  return result.stdout;
}
