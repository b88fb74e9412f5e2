/**
 * The client library (`envelope-service/client`): every operation of the service, typed from
 * openapi.yaml, and client-side envelope encryption in the service's own stream format. README,
 * "Client library and command".
 */
export { EnvelopeClient, DEFAULT_BATCH_SIZE } from './client.js';
export type {
  BinaryOptions,
  BinaryResult,
  CallOptions,
  DataKeyRequest,
  DataKeyResult,
  DecryptRequest,
  DecryptResult,
  EncryptRequest,
  EncryptResult,
  KeysResult,
  RewrapRequest,
  RewrapResult,
  UnwrapRequest,
  UnwrapResult,
} from './client.js';
export type { ClientOptions } from './options.js';
export type { RetryOptions } from './retry.js';
export { EnvelopeProblem, GrantMissingError, StreamCutError } from './errors.js';
export { ClientTimeoutError } from './transport.js';
export { EnvelopeError } from '../format/errors.js';
export { SegmentAuthenticationError } from '../format/stream-crypto.js';
export { sealStream, openStream, type SealOptions, type OpenOptions } from './client-side.js';
export { describeCiphertext, type CiphertextDescription } from './inspect.js';
export type { StreamResponse } from './stream-transport.js';
export type { Context } from './context-header.js';
export type { paths, components, operations } from './api.js';
