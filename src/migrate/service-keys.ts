/**
 * MigrationKeys through the service: `POST /v1/unwrap` for the source file's data key (grant
 * `datakey:unwrap`) and `POST /v1/datakey` with `includePlaintext` for the new one (grant
 * `datakey:plaintext`). Every file is then authorized by the policy and in the audit trail,
 * and the operator's machine needs no KMS rights.
 */
import type { EncryptionContext } from '../kms/provider.js';
import { KeySourceError, type MigrationKeys } from './migration-keys.js';

export interface ServiceEndpoint {
  /** The service's base URL, e.g. https://envelope.internal:8443 */
  url: string;
  token: string;
  /** Per call (default 30 s). */
  timeoutMs?: number;
}

interface DataKeyAnswer {
  keyId: string;
  wrappedKey?: string;
  plaintextKey?: string;
}

export function serviceKeys(endpoint: ServiceEndpoint): MigrationKeys {
  const call = async (path: string, body: unknown): Promise<DataKeyAnswer> => {
    let response: Response;
    try {
      response = await fetch(new URL(path, endpoint.url), {
        method: 'POST',
        headers: { authorization: `Bearer ${endpoint.token}`, 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(endpoint.timeoutMs ?? 30_000),
      });
    } catch (error) {
      throw new KeySourceError('ServiceUnreachable', `${path}: ${(error as Error).message}`);
    }
    const text = await response.text();
    if (!response.ok) {
      let problem: { code?: string; detail?: string; title?: string } = {};
      try {
        problem = JSON.parse(text) as typeof problem;
      } catch {
        // not a problem document: the status says enough
      }
      throw new KeySourceError(problem.code ?? `Http${response.status}`, `${path} answered ${response.status}${problem.code ? ` ${problem.code}` : ''}: ${problem.detail ?? problem.title ?? 'no detail'}`);
    }
    return JSON.parse(text) as DataKeyAnswer;
  };
  const keyBytes = (base64: string | undefined, path: string): Buffer => {
    const key = Buffer.from(base64 ?? '', 'base64');
    if (key.length !== 32) throw new KeySourceError('BadDataKey', `${path} answered no 32-byte plaintext key`);
    return key;
  };
  return {
    async unwrap(blob: Buffer, keyId: string, context: EncryptionContext) {
      const answer = await call('/v1/unwrap', { keyId, wrappedKey: blob.toString('base64'), context });
      return keyBytes(answer.plaintextKey, '/v1/unwrap');
    },
    async issue(keyId: string, context: EncryptionContext) {
      const answer = await call('/v1/datakey', { keyId, context, includePlaintext: true });
      const plaintextKey = keyBytes(answer.plaintextKey, '/v1/datakey');
      if (!answer.wrappedKey) throw new KeySourceError('BadDataKey', '/v1/datakey answered no wrapped key');
      return { keyArn: answer.keyId, wrappedKey: Buffer.from(answer.wrappedKey, 'base64'), plaintextKey };
    },
  };
}
