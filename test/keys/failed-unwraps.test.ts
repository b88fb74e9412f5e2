/**
 * The memory of refused unwraps: only KMS's definitive refusal is remembered, never a failure
 * that says nothing about the envelope (KMS unreachable, throttling, key state, access).
 */
import { describe, expect, it } from 'vitest';
import { FailedUnwraps } from '../../src/keys/failed-unwraps.js';
import { KmsError, type KmsErrorCode } from '../../src/kms/errors.js';

describe('failed unwraps', () => {
  it('remembers InvalidCiphertext for exactly that key, wrapped key and context', () => {
    const memory = new FailedUnwraps();
    memory.remember('arn\u0000blob\u0000ctx', new KmsError('InvalidCiphertext', 'cannot unwrap'));
    expect(() => memory.recall('arn\u0000blob\u0000ctx')).toThrow(expect.objectContaining({ code: 'InvalidCiphertext' }));
    expect(() => memory.recall('arn\u0000blob\u0000other-ctx')).not.toThrow();
  });

  it('never remembers a failure that could pass: an outage, throttling, key state, access, a bug', () => {
    const memory = new FailedUnwraps();
    const transient: KmsErrorCode[] = ['Unavailable', 'Throttled', 'KeyDisabled', 'KeyUnavailableState', 'AccessDenied', 'KeyNotFound'];
    for (const code of transient) memory.remember(`p-${code}`, new KmsError(code, code));
    memory.remember('p-bug', new Error('bug'));
    for (const key of [...transient.map((code) => `p-${code}`), 'p-bug']) expect(() => memory.recall(key)).not.toThrow();
  });
});
