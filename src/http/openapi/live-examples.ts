/**
 * The OpenAPI document as this instance serves it (/openapi.json, /docs): the committed
 * openapi.yaml stays deterministic, so its decrypt, decrypt/batch, decrypt/binary, decrypt/stream,
 * rewrap and unwrap examples carry ciphertexts from another keystore, which no other instance can open. An
 * instance on the embedded (local) provider swaps them for ciphertexts it made itself, of the
 * same plaintexts with the same contexts and aad, under its DEFAULT_KEY_ID: every "Try it out"
 * example then runs as is on a fresh dev instance.
 *
 * Only with the local provider: there making them costs no KMS call and no one's quota, and
 * nothing leaves the process. With AWS KMS the document keeps the committed examples, whose
 * descriptions say to paste a ciphertext from /v1/encrypt. The examples are made on the first
 * request for the document or the UI (not at start: a fresh instance's caches and metrics stay
 * untouched until someone opens /docs), and once. They encrypt only the published example
 * plaintexts, so they carry nothing secret; they are not audited, since no caller asked for them.
 */
import type { FastifyBaseLogger } from 'fastify';
import { sealExamples } from '../../operations/examples.js';
import type { OperationDeps } from '../../operations/operation.js';
import {
  EXAMPLE_AAD,
  EXAMPLE_CIPHERTEXT,
  EXAMPLE_CIPHERTEXT_BOUND,
  EXAMPLE_CONTEXT,
  EXAMPLE_HELLO,
  EXAMPLE_KEY_ARN,
  EXAMPLE_STREAM_CIPHERTEXT,
  EXAMPLE_WRAPPED_KEY,
} from '../schemas/schemas.js';

export class LiveExamples {
  /** Committed example value -> this instance's own. */
  #replacements: Map<string, string> | undefined;
  #making: Promise<void> | undefined;

  constructor(private readonly deps: OperationDeps) {}

  /** Makes the examples if not yet made; never throws (the committed examples stay in use). */
  async ready(log: FastifyBaseLogger): Promise<void> {
    if (this.#replacements) return;
    this.#making ??= this.#make().catch((error: unknown) => {
      log.warn({ errorName: (error as Error)?.name }, 'could not make the OpenAPI examples of this instance; serving the committed ones');
      this.#making = undefined; // the next request tries again
    });
    await this.#making;
  }

  /** The document with this instance's examples, once ready() has made them; else unchanged. */
  apply<T>(document: T): T {
    const replacements = this.#replacements;
    return replacements ? (replaceStrings(document, replacements) as T) : document;
  }

  async #make(): Promise<void> {
    const made = await sealExamples(
      this.deps,
      [
        { plaintext: EXAMPLE_HELLO, context: {}, aad: undefined },
        { plaintext: EXAMPLE_HELLO, context: EXAMPLE_CONTEXT, aad: EXAMPLE_AAD },
      ],
      EXAMPLE_HELLO,
    );
    this.#replacements = new Map([
      [EXAMPLE_STREAM_CIPHERTEXT, made.streamCiphertext],
      [EXAMPLE_CIPHERTEXT, made.ciphertexts[0]!],
      [EXAMPLE_CIPHERTEXT_BOUND, made.ciphertexts[1]!],
      [EXAMPLE_KEY_ARN, made.keyArn],
      [EXAMPLE_WRAPPED_KEY, made.wrappedKey],
    ]);
  }
}

/** A copy of a JSON value with every string equal to a key of `replacements` replaced. */
function replaceStrings(value: unknown, replacements: ReadonlyMap<string, string>): unknown {
  if (typeof value === 'string') return replacements.get(value) ?? value;
  if (Array.isArray(value)) return value.map((item) => replaceStrings(item, replacements));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, replaceStrings(item, replacements)]));
  }
  return value;
}
