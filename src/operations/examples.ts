/**
 * The ciphertexts of the OpenAPI document's examples, made by this instance under its
 * DEFAULT_KEY_ID (http/openapi/live-examples.ts swaps them into the served document). Not a caller's
 * operation: no policy is asked and nothing is audited, since no caller asked for them; only the
 * published example plaintexts are encrypted, so they carry nothing secret.
 */
import { toContext } from '../format/context.js';
import { toCiphertextString } from '../format/format.js';
import { KmsTrace } from '../keys/kms-trace.js';
import { StreamSealer } from '../format/stream-crypto.js';
import { toStreamText } from '../format/stream-text-form.js';
import type { OperationDeps } from './operation.js';

export interface ExampleMessage {
  /** The plaintext, base64, as the document shows it. */
  plaintext: string;
  context: Readonly<Record<string, string>>;
  /** base64, as the document shows it. */
  aad: string | undefined;
}

export interface SealedExamples {
  /** DEFAULT_KEY_ID as resolved. */
  keyArn: string;
  /** An `ev1:` ciphertext of each message, in order. */
  ciphertexts: string[];
  /** The text form of a stream (format v2) of `streamPlaintext`, no context, no aad. */
  streamCiphertext: string;
  /** A data key wrapped under DEFAULT_KEY_ID, no context, base64 (the unwrap example). */
  wrappedKey: string;
}

export async function sealExamples(deps: OperationDeps, messages: readonly ExampleMessage[], streamPlaintext: string): Promise<SealedExamples> {
  const { envelope, directory, defaultKeyId } = deps;
  const trace = new KmsTrace();
  const keyArn = await directory.resolve(defaultKeyId, trace);
  const seal = async ({ plaintext, context, aad }: ExampleMessage): Promise<string> => {
    const made = await envelope.encryptToEnvelope(
      keyArn,
      Buffer.from(plaintext, 'base64'),
      toContext(context),
      aad === undefined ? undefined : Buffer.from(aad, 'base64'),
      trace,
    );
    return toCiphertextString(made.envelope);
  };
  const sealStream = async (): Promise<string> => {
    const plaintext = Buffer.from(streamPlaintext, 'base64');
    const started = await envelope.startStream(keyArn, toContext({}), plaintext.length, trace);
    const sealer = new StreamSealer({ ...started, aad: undefined, maxBytes: plaintext.length });
    const chunks: Buffer[] = [];
    sealer.on('data', (chunk: Buffer) => chunks.push(chunk));
    const done = new Promise<void>((resolve, reject) => sealer.on('end', resolve).on('error', reject));
    sealer.end(plaintext);
    await done;
    return toStreamText(Buffer.concat(chunks));
  };
  // The stream first, as before: the order of KMS calls is the same on every instance.
  const streamCiphertext = await sealStream();
  const ciphertexts: string[] = [];
  for (const message of messages) ciphertexts.push(await seal(message));
  const issued = await envelope.issueDataKey(keyArn, toContext({}), false, trace);
  return { keyArn, ciphertexts, streamCiphertext, wrappedKey: issued.wrappedKey.toString('base64') };
}
