/**
 * KMS failures -> what the caller sees (src/http/problem.ts): one status and stable code per
 * KmsError code, Retry-After on every 503, and the breaker's remaining cooldown as Retry-After.
 * The same mapping is exercised end to end in fault-matrix.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { describeError } from '../../src/http/problem.js';
import { CircuitOpenError } from '../../src/kms/circuit-breaker.js';
import { KmsError, type KmsErrorCode } from '../../src/kms/errors.js';

describe('KMS error mapping', () => {
  it.each([
    ['KeyNotFound', 404, 'KeyNotFound', undefined],
    ['KeyDisabled', 409, 'KeyDisabled', undefined],
    ['KeyUnavailableState', 409, 'KeyPendingDeletion', undefined],
    ['InvalidCiphertext', 422, 'DataKeyUnwrapFailed', undefined],
    ['AccessDenied', 403, 'KmsAccessDenied', undefined],
    ['Throttled', 503, 'KmsThrottled', 1],
    ['Unavailable', 503, 'KmsUnavailable', 5],
    ['InvalidRequest', 400, 'InvalidKeyId', undefined],
  ] as const)('%s -> %i %s (Retry-After %s)', (kmsCode, status, code, retryAfter) => {
    const problem = describeError(new KmsError(kmsCode as KmsErrorCode, 'upstream text that must not leak'));
    expect(problem).toMatchObject({ status, code });
    expect(problem.retryAfterSeconds).toBe(retryAfter);
    expect(problem.detail).not.toContain('upstream text');
  });

  it.each([
    [1, 1],
    [999, 1],
    [1_000, 1],
    [1_001, 2],
    [4_200, 5],
  ])('open circuit, %i ms of cooldown left -> 503 KmsUnavailable, Retry-After %i', (left, seconds) => {
    const problem = describeError(new CircuitOpenError('GenerateDataKey', left));
    expect(problem).toMatchObject({ status: 503, code: 'KmsUnavailable', retryAfterSeconds: seconds });
  });
});
