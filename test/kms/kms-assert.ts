/** Assertion helpers shared by the KMS test files. */
import { expect } from 'vitest';
import { KmsError, type KmsErrorCode } from '../../src/kms/errors.js';

/** Awaits `promise`, expects a KmsError with `code`, returns it for further checks. */
export async function expectKmsError(promise: Promise<unknown>, code: KmsErrorCode): Promise<KmsError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected KmsError ${code}, got a result`).toBeDefined();
  expect(caught).toBeInstanceOf(KmsError);
  expect((caught as KmsError).code, (caught as Error).message).toBe(code);
  return caught as KmsError;
}

/** No error message may carry key material: check the hex and base64 of a key are absent. */
export function expectNoSecretIn(text: string, secret: Buffer): void {
  expect(text).not.toContain(secret.toString('hex'));
  expect(text).not.toContain(secret.toString('base64'));
}
