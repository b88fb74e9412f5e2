/**
 * A client of the service as another team would write it: types generated from openapi.yaml
 * by openapi-typescript (into ./generated/api.ts, by test/client/generated-client.test.ts) and the
 * openapi-fetch runtime, with no cast anywhere. It runs every operation once against a
 * running service and returns what came back; the test asserts on it.
 *
 * Type-checked with test/client/tsconfig.json (strict), not with the project's tsconfig: the
 * generated types exist only once the test has generated them.
 */
import createClient from 'openapi-fetch';
import type { paths } from './generated/api.js';

const OCTET_STREAM = 'application/octet-stream';
/** Raw bytes go out as they are: openapi-fetch's default serializer would JSON.stringify them. */
const rawBytes = (body: unknown): unknown => body;

export interface RoundTrip {
  encrypted: { ciphertext: string; keyId: string };
  decrypted: { plaintext: string; keyId: string; context: Record<string, string> };
  encryptBatch: unknown[];
  decryptBatch: unknown[];
  rewrapped: { ciphertext: string; keyId: string };
  rewrappedPlaintext: string;
  dataKey: { keyId: string; wrappedKey: string; plaintextKey?: string };
  binaryEnvelope: Uint8Array;
  binaryKeyId: string | null;
  binaryPlaintext: Uint8Array;
  binaryContext: string | null;
  streamCiphertext: Uint8Array;
  streamPlaintext: Uint8Array;
  keys: { keyId: string; aliases: string[]; operations: string[]; grants: unknown[] }[];
  health: string;
  readiness: string;
  metrics: string;
  problem: { status: number; code: string };
}

export async function roundTrip(baseUrl: string, token: string, plaintext: Uint8Array): Promise<RoundTrip> {
  const client = createClient<paths>({ baseUrl, headers: { authorization: `Bearer ${token}` } });
  const base64 = Buffer.from(plaintext).toString('base64');
  const context = { tenant: 'acme', purpose: 'billing' };

  const encrypt = await client.POST('/v1/encrypt', { body: { plaintext: base64, context, aad: 'cm93LTE=' } });
  if (!encrypt.data) throw new Error(`encrypt: ${encrypt.response.status}`);
  const decrypt = await client.POST('/v1/decrypt', { body: { ciphertext: encrypt.data.ciphertext, context, aad: 'cm93LTE=' } });
  if (!decrypt.data) throw new Error(`decrypt: ${decrypt.response.status}`);

  const encryptBatch = await client.POST('/v1/encrypt/batch', { body: { items: [{ plaintext: base64 }, { plaintext: base64, context }] } });
  if (!encryptBatch.data) throw new Error(`encrypt/batch: ${encryptBatch.response.status}`);
  const ciphertexts = encryptBatch.data.results.flatMap((result) => ('ciphertext' in result ? [result.ciphertext] : []));
  const decryptBatch = await client.POST('/v1/decrypt/batch', { body: { items: ciphertexts.map((ciphertext) => ({ ciphertext })) } });
  if (!decryptBatch.data) throw new Error(`decrypt/batch: ${decryptBatch.response.status}`);

  const rewrap = await client.POST('/v1/rewrap', { body: { ciphertext: encrypt.data.ciphertext, keyId: 'alias/default', context } });
  if (!rewrap.data) throw new Error(`rewrap: ${rewrap.response.status}`);
  const afterRewrap = await client.POST('/v1/decrypt', { body: { ciphertext: rewrap.data.ciphertext, aad: 'cm93LTE=' } });
  if (!afterRewrap.data) throw new Error(`decrypt after rewrap: ${afterRewrap.response.status}`);

  const dataKey = await client.POST('/v1/datakey', { body: { context, includePlaintext: true } });
  if (!dataKey.data) throw new Error(`datakey: ${dataKey.response.status}`);
  const unwrap = await client.POST('/v1/unwrap', { body: { keyId: dataKey.data.keyId, wrappedKey: dataKey.data.wrappedKey, context } });
  if (!unwrap.data) throw new Error(`unwrap: ${unwrap.response.status}`);
  if (unwrap.data.plaintextKey !== dataKey.data.plaintextKey) throw new Error('unwrap: not the issued key');

  const encryptBinary = await client.POST('/v1/encrypt/binary', {
    body: plaintext,
    bodySerializer: rawBytes,
    headers: { 'content-type': OCTET_STREAM },
    params: { header: { 'x-envelope-context': 'tenant=acme' } },
    parseAs: 'arrayBuffer',
  });
  if (!encryptBinary.data) throw new Error(`encrypt/binary: ${encryptBinary.response.status}`);
  const binaryEnvelope = new Uint8Array(encryptBinary.data);
  const decryptBinary = await client.POST('/v1/decrypt/binary', {
    body: binaryEnvelope,
    bodySerializer: rawBytes,
    headers: { 'content-type': OCTET_STREAM },
    params: { header: { 'x-envelope-context': 'tenant=acme' } },
    parseAs: 'arrayBuffer',
  });
  if (!decryptBinary.data) throw new Error(`decrypt/binary: ${decryptBinary.response.status}`);

  // The stream routes take and answer raw bytes the same way (a fetch body is sent whole here).
  const encryptStream = await client.POST('/v1/encrypt/stream', {
    body: plaintext,
    bodySerializer: rawBytes,
    headers: { 'content-type': OCTET_STREAM },
    params: { header: { 'x-envelope-context': 'tenant=acme' } },
    parseAs: 'arrayBuffer',
  });
  if (!encryptStream.data) throw new Error(`encrypt/stream: ${encryptStream.response.status}`);
  const streamCiphertext = new Uint8Array(encryptStream.data);
  const decryptStream = await client.POST('/v1/decrypt/stream', {
    body: streamCiphertext,
    bodySerializer: rawBytes,
    headers: { 'content-type': OCTET_STREAM },
    parseAs: 'arrayBuffer',
  });
  if (!decryptStream.data) throw new Error(`decrypt/stream: ${decryptStream.response.status}`);

  const keys = await client.GET('/v1/keys');
  if (!keys.data) throw new Error(`keys: ${keys.response.status}`);
  const health = await client.GET('/healthz');
  const readiness = await client.GET('/readyz');
  if (!health.data || !readiness.data) throw new Error('health or readiness failed');
  const metrics = await client.GET('/metrics', { parseAs: 'text' });
  if (metrics.data === undefined) throw new Error(`metrics: ${metrics.response.status}`);

  // An error comes back typed as the Problem schema.
  const denied = await client.POST('/v1/encrypt', { body: { plaintext: base64, keyId: 'alias/does-not-exist' } });
  if (!denied.error) throw new Error('an unknown key was accepted');

  return {
    encrypted: encrypt.data,
    decrypted: decrypt.data,
    encryptBatch: encryptBatch.data.results,
    decryptBatch: decryptBatch.data.results,
    rewrapped: rewrap.data,
    rewrappedPlaintext: afterRewrap.data.plaintext,
    dataKey: dataKey.data,
    binaryEnvelope,
    binaryKeyId: encryptBinary.response.headers.get('x-envelope-key-id'),
    binaryPlaintext: new Uint8Array(decryptBinary.data),
    binaryContext: decryptBinary.response.headers.get('x-envelope-context'),
    streamCiphertext,
    streamPlaintext: new Uint8Array(decryptStream.data),
    keys: keys.data.keys,
    health: health.data.status,
    readiness: readiness.data.status,
    metrics: metrics.data,
    problem: { status: denied.error.status, code: denied.error.code },
  };
}
