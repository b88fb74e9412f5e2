/**
 * EnvelopeClient: every operation of the service, typed from openapi.yaml (api.ts, generated),
 * with problems as EnvelopeProblem, retries (retry.ts), timeouts and AbortSignals. JSON and
 * binary operations go through openapi-fetch; streams through node:http (stream-transport.ts).
 */
import createClient, { type Client } from 'openapi-fetch';
import type { Readable } from 'node:stream';
import type { components, operations, paths } from './api.js';
import { encodeContextHeader, decodeContextHeader, type Context } from './context-header.js';
import { EnvelopeProblem, GrantMissingError, parseRetryAfter } from './errors.js';
import { baseHeaders, resolveOptions, type ClientOptions, type ResolvedOptions } from './options.js';
import { postStream, type StreamResponse } from './stream-transport.js';
import { retryingFetch } from './transport.js';

type JsonBody<O extends keyof operations> = operations[O] extends { requestBody: { content: { 'application/json': infer B } } } ? B : never;
type JsonAnswer<O extends keyof operations> = operations[O] extends { responses: { 200: { content: { 'application/json': infer R } } } } ? R : never;

export type EncryptRequest = JsonBody<'encrypt'>;
export type EncryptResult = JsonAnswer<'encrypt'>;
export type DecryptRequest = JsonBody<'decrypt'>;
export type DecryptResult = JsonAnswer<'decrypt'>;
export type RewrapRequest = JsonBody<'rewrap'>;
export type RewrapResult = JsonAnswer<'rewrap'>;
export type DataKeyRequest = JsonBody<'generateDataKey'>;
export type DataKeyResult = JsonAnswer<'generateDataKey'>;
export type UnwrapRequest = JsonBody<'unwrapDataKey'>;
export type UnwrapResult = JsonAnswer<'unwrapDataKey'>;
export type KeysResult = JsonAnswer<'listKeys'>;
export type BatchItemError = components['schemas'] extends { ItemError: infer E } ? E : { error: { code: string; status: number; detail: string } };

export interface CallOptions {
  signal?: AbortSignal;
}

/** Key, context and aad of the binary and stream routes. */
export interface BinaryOptions extends CallOptions {
  keyId?: string;
  /** On encrypt, the context to bind; on decrypt, the context expected (checked against the stored one). */
  context?: Context;
  aad?: Uint8Array;
}

export interface BinaryResult {
  bytes: Buffer;
  keyId: string | undefined;
  context: Record<string, string> | undefined;
}

/** The service's batch limit (BATCH_MAX_ITEMS default); the batch helpers split larger inputs. */
export const DEFAULT_BATCH_SIZE = 100;

const OCTET_STREAM = 'application/octet-stream';
/** Raw bytes go out as they are (openapi-fetch would JSON-encode them). */
const rawBytes = (body: unknown) => body as Uint8Array as never;

export class EnvelopeClient {
  readonly options: ResolvedOptions;
  readonly #api: Client<paths>;

  constructor(options: ClientOptions) {
    this.options = resolveOptions(options);
    this.#api = createClient<paths>({ baseUrl: this.options.baseUrl.href.replace(/\/$/, ''), fetch: retryingFetch(this.options) });
  }

  async encrypt(body: EncryptRequest, call: CallOptions = {}): Promise<EncryptResult> {
    return this.#answer('POST /v1/encrypt', await this.#api.POST('/v1/encrypt', { body, ...this.#init(call) }));
  }

  async decrypt(body: DecryptRequest, call: CallOptions = {}): Promise<DecryptResult> {
    return this.#answer('POST /v1/decrypt', await this.#api.POST('/v1/decrypt', { body, ...this.#init(call) }));
  }

  /** One batch request (at most the service's BATCH_MAX_ITEMS items); results in input order, per-item errors in place. */
  async encryptBatch(items: EncryptRequest[], call: CallOptions = {}): Promise<JsonAnswer<'encryptBatch'>['results']> {
    return this.#answer('POST /v1/encrypt/batch', await this.#api.POST('/v1/encrypt/batch', { body: { items }, ...this.#init(call) })).results;
  }

  async decryptBatch(items: DecryptRequest[], call: CallOptions = {}): Promise<JsonAnswer<'decryptBatch'>['results']> {
    return this.#answer('POST /v1/decrypt/batch', await this.#api.POST('/v1/decrypt/batch', { body: { items }, ...this.#init(call) })).results;
  }

  /** Any number of items, sent in batches of `batchSize` one after another; results in input order. */
  async encryptMany(items: EncryptRequest[], call: CallOptions & { batchSize?: number } = {}): Promise<JsonAnswer<'encryptBatch'>['results']> {
    return inBatches(items, call.batchSize ?? DEFAULT_BATCH_SIZE, (batch) => this.encryptBatch(batch, call));
  }

  async decryptMany(items: DecryptRequest[], call: CallOptions & { batchSize?: number } = {}): Promise<JsonAnswer<'decryptBatch'>['results']> {
    return inBatches(items, call.batchSize ?? DEFAULT_BATCH_SIZE, (batch) => this.decryptBatch(batch, call));
  }

  async rewrap(body: RewrapRequest, call: CallOptions = {}): Promise<RewrapResult> {
    return this.#answer('POST /v1/rewrap', await this.#api.POST('/v1/rewrap', { body, ...this.#init(call) }));
  }

  /** A fresh data key; with `includePlaintext` (grant `datakey:plaintext`) the caller zeroes what it decodes. */
  async dataKey(body: DataKeyRequest = {}, call: CallOptions = {}): Promise<DataKeyResult> {
    try {
      return this.#answer('POST /v1/datakey', await this.#api.POST('/v1/datakey', { body, ...this.#init(call) }));
    } catch (error) {
      if (body.includePlaintext && error instanceof EnvelopeProblem && error.status === 403) {
        throw new GrantMissingError(error, 'datakey:plaintext', 'a plaintext data key (client-side encryption)');
      }
      throw error;
    }
  }

  /** The plaintext of a stored data key (grant `datakey:unwrap`); the caller zeroes what it decodes. */
  async unwrap(body: UnwrapRequest, call: CallOptions = {}): Promise<UnwrapResult> {
    try {
      return this.#answer('POST /v1/unwrap', await this.#api.POST('/v1/unwrap', { body, ...this.#init(call) }));
    } catch (error) {
      if (error instanceof EnvelopeProblem && error.status === 403) {
        throw new GrantMissingError(error, 'datakey:unwrap', 'unwrapping a stored data key (client-side decryption)');
      }
      throw error;
    }
  }

  async keys(call: CallOptions = {}): Promise<KeysResult> {
    return this.#answer('GET /v1/keys', await this.#api.GET('/v1/keys', { ...this.#init(call) }));
  }

  async encryptBinary(plaintext: Uint8Array, options: BinaryOptions = {}): Promise<BinaryResult> {
    const answer = await this.#api.POST('/v1/encrypt/binary', {
      body: plaintext as never,
      bodySerializer: rawBytes,
      parseAs: 'arrayBuffer',
      ...this.#init(options, { 'content-type': OCTET_STREAM, ...binaryHeaders(options) }),
    });
    return binaryResult('POST /v1/encrypt/binary', answer);
  }

  /** The binary envelope, or the `ev1:` text as bytes. */
  async decryptBinary(ciphertext: Uint8Array, options: Omit<BinaryOptions, 'keyId'> = {}): Promise<BinaryResult> {
    const answer = await this.#api.POST('/v1/decrypt/binary', {
      body: ciphertext as never,
      bodySerializer: rawBytes,
      parseAs: 'arrayBuffer',
      ...this.#init(options, { 'content-type': OCTET_STREAM, ...binaryHeaders(options) }),
    });
    return binaryResult('POST /v1/decrypt/binary', answer);
  }

  /**
   * Server-side stream encryption: `plaintext` in, the stream ciphertext (format v2) out. The
   * Readable errors (never ends) if the service refuses or cuts the stream. `contentLength`,
   * when known, lets the policy judge the size (a rule with maxPlaintextBytes needs it).
   */
  encryptStream(plaintext: Readable, options: BinaryOptions & { contentLength?: number } = {}): StreamResponse {
    return postStream(this.options, '/v1/encrypt/stream', streamHeaders(options), plaintext, options.signal);
  }

  /** Server-side stream decryption (binary v2 or its `ev2:` text form); errors, never ends, when cut short. */
  decryptStream(ciphertext: Readable, options: Omit<BinaryOptions, 'keyId'> & { contentLength?: number } = {}): StreamResponse {
    return postStream(this.options, '/v1/decrypt/stream', streamHeaders(options), ciphertext, options.signal);
  }

  async health(call: CallOptions = {}): Promise<boolean> {
    const answer = await this.#api.GET('/healthz', { ...this.#init(call), parseAs: 'text' });
    return answer.response.ok;
  }

  async ready(call: CallOptions = {}): Promise<boolean> {
    const answer = await this.#api.GET('/readyz', { ...this.#init(call), parseAs: 'text' });
    return answer.response.ok;
  }

  async cacheState(call: CallOptions = {}): Promise<JsonAnswer<'adminGetCache'>> {
    return this.#answer('GET /v1/admin/cache', await this.#api.GET('/v1/admin/cache', { ...this.#init(call) }));
  }

  async evict(body: JsonBody<'adminEvictCache'>, call: CallOptions = {}): Promise<JsonAnswer<'adminEvictCache'>> {
    return this.#answer('POST /v1/admin/cache/evict', await this.#api.POST('/v1/admin/cache/evict', { body, ...this.#init(call) }));
  }

  async policyState(call: CallOptions = {}): Promise<JsonAnswer<'adminGetPolicy'>> {
    return this.#answer('GET /v1/admin/policy', await this.#api.GET('/v1/admin/policy', { ...this.#init(call) }));
  }

  async reloadPolicy(call: CallOptions = {}): Promise<JsonAnswer<'adminReloadPolicy'>> {
    return this.#answer('POST /v1/admin/policy/reload', await this.#api.POST('/v1/admin/policy/reload', { ...this.#init(call) }));
  }

  async kmsState(call: CallOptions = {}): Promise<JsonAnswer<'adminGetKms'>> {
    return this.#answer('GET /v1/admin/kms', await this.#api.GET('/v1/admin/kms', { ...this.#init(call) }));
  }

  #init(call: CallOptions, headers: Record<string, string> = {}): { headers: Record<string, string>; signal?: AbortSignal } {
    return { headers: { ...baseHeaders(this.options), ...headers }, ...(call.signal ? { signal: call.signal } : {}) };
  }

  #answer<T>(operation: string, answer: { data?: T; error?: unknown; response: Response }): T {
    if (answer.response.ok && answer.data !== undefined) return answer.data;
    throw problemOf(operation, answer.response, answer.error);
  }
}

function problemOf(operation: string, response: Response, body: unknown): EnvelopeProblem {
  return new EnvelopeProblem(
    operation,
    response.status,
    body !== null && typeof body === 'object' ? (body as Record<string, unknown>) : undefined,
    parseRetryAfter(response.headers.get('retry-after')),
    response.headers.get('x-request-id') ?? undefined,
  );
}

function binaryHeaders(options: BinaryOptions): Record<string, string> {
  return {
    ...(options.keyId ? { 'x-envelope-key-id': options.keyId } : {}),
    ...(options.context ? { 'x-envelope-context': encodeContextHeader(options.context) } : {}),
    ...(options.aad ? { 'x-envelope-aad': Buffer.from(options.aad).toString('base64') } : {}),
  };
}

function streamHeaders(options: BinaryOptions & { contentLength?: number }): Record<string, string> {
  return { ...binaryHeaders(options), ...(options.contentLength === undefined ? {} : { 'content-length': String(options.contentLength) }) };
}

function binaryResult(operation: string, answer: { data?: ArrayBuffer; error?: unknown; response: Response }): BinaryResult {
  if (!answer.response.ok || answer.data === undefined) throw problemOf(operation, answer.response, answer.error);
  return {
    bytes: Buffer.from(answer.data),
    keyId: answer.response.headers.get('x-envelope-key-id') ?? undefined,
    context: decodeContextHeader(answer.response.headers.get('x-envelope-context') ?? undefined),
  };
}

async function inBatches<I, R>(items: I[], size: number, send: (batch: I[]) => Promise<R[]>): Promise<R[]> {
  const results: R[] = [];
  for (let start = 0; start < items.length; start += size) results.push(...(await send(items.slice(start, start + size))));
  return results;
}
