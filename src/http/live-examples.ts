/**
 * The OpenAPI document as this instance serves it (/openapi.json, /docs): the committed
 * openapi.yaml stays deterministic, so its decrypt, decrypt/batch, decrypt/binary, decrypt/stream
 * and rewrap examples carry ciphertexts from another keystore, which no other instance can open. An
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
import type { KeyDirectory } from '../kms/key-directory.js';
import { toContext } from '../envelope/context.js';
import { KmsTrace } from '../envelope/kms-trace.js';
import { toCiphertextString } from '../envelope/format.js';
import type { EnvelopeService } from '../envelope/service.js';
import { StreamSealer } from '../envelope/stream-crypto.js';
import { toStreamText } from '../envelope/stream-text-form.js';
import {
  EXAMPLE_AAD,
  EXAMPLE_CIPHERTEXT,
  EXAMPLE_CIPHERTEXT_BOUND,
  EXAMPLE_CONTEXT,
  EXAMPLE_HELLO,
  EXAMPLE_KEY_ARN,
  EXAMPLE_STREAM_CIPHERTEXT,
} from './schemas.js';

export interface LiveExampleDeps {
  envelope: EnvelopeService;
  directory: KeyDirectory;
  defaultKeyId: string;
}

export class LiveExamples {
  /** Committed example value -> this instance's own. */
  #replacements: Map<string, string> | undefined;
  #making: Promise<void> | undefined;

  constructor(private readonly deps: LiveExampleDeps) {}

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
    const { envelope, directory, defaultKeyId } = this.deps;
    const trace = new KmsTrace();
    const keyArn = await directory.resolve(defaultKeyId, trace);
    const seal = async (context: Record<string, string>, aad: string | undefined): Promise<string> => {
      const plaintext = Buffer.from(EXAMPLE_HELLO, 'base64');
      const made = await envelope.encryptToEnvelope(keyArn, plaintext, toContext(context), aad === undefined ? undefined : Buffer.from(aad, 'base64'), trace);
      return toCiphertextString(made.envelope);
    };
    const sealStream = async (): Promise<string> => {
      const plaintext = Buffer.from(EXAMPLE_HELLO, 'base64');
      const started = await envelope.startStream(keyArn, toContext({}), plaintext.length, trace);
      const sealer = new StreamSealer({ ...started, aad: undefined, maxBytes: plaintext.length });
      const chunks: Buffer[] = [];
      sealer.on('data', (chunk: Buffer) => chunks.push(chunk));
      const done = new Promise<void>((resolve, reject) => sealer.on('end', resolve).on('error', reject));
      sealer.end(plaintext);
      await done;
      return toStreamText(Buffer.concat(chunks));
    };
    this.#replacements = new Map([
      [EXAMPLE_STREAM_CIPHERTEXT, await sealStream()],
      [EXAMPLE_CIPHERTEXT, await seal({}, undefined)],
      [EXAMPLE_CIPHERTEXT_BOUND, await seal(EXAMPLE_CONTEXT, EXAMPLE_AAD)],
      [EXAMPLE_KEY_ARN, keyArn],
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
