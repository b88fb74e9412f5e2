/** translateAwsError on error shapes that need no server: network failures, odd inputs. */
import { describe, expect, it } from 'vitest';
import { translateAwsError } from '../../src/kms/aws-errors.js';
import { KmsError } from '../../src/kms/errors.js';

describe('translateAwsError', () => {
  it.each(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE'])(
    'socket error %s -> Unavailable',
    (code) => {
      const error = Object.assign(new Error(`connect ${code} 10.0.0.1:443`), { code });
      expect(translateAwsError(error, 'Decrypt').code).toBe('Unavailable');
    },
  );

  it('SDK TimeoutError (connection or request timeout) -> Unavailable', () => {
    const error = Object.assign(new Error('request timed out'), { name: 'TimeoutError' });
    expect(translateAwsError(error, 'GenerateDataKey').code).toBe('Unavailable');
  });

  it('no credentials at all -> Unavailable (an operations problem, not the caller)', () => {
    const error = Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' });
    expect(translateAwsError(error, 'DescribeKey').code).toBe('Unavailable');
  });

  it('keeps the SDK requestId, the operation name and the original error as cause', () => {
    const sdk = Object.assign(new Error('Key arn:… is disabled'), {
      name: 'DisabledException',
      $fault: 'client',
      $metadata: { httpStatusCode: 400, requestId: 'abc-123' },
    });
    const error = translateAwsError(sdk, 'GenerateDataKey');
    expect(error).toBeInstanceOf(KmsError);
    expect(error).toMatchObject({ code: 'KeyDisabled', requestId: 'abc-123', cause: sdk });
    expect(error.message).toBe('KMS GenerateDataKey failed (DisabledException, HTTP 400): the key is disabled');
  });

  it('passes a KmsError through unchanged and copes with non-Error values', () => {
    const original = new KmsError('Throttled', 'x');
    expect(translateAwsError(original, 'Decrypt')).toBe(original);
    expect(translateAwsError('boom', 'Decrypt').code).toBe('Unavailable');
    expect(translateAwsError(undefined, 'Decrypt').code).toBe('Unavailable');
  });
});
