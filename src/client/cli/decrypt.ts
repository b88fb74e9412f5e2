/**
 * `envelope decrypt`: the format is read from the input. A stream (format v2, binary or `ev2:`)
 * is opened here with its data key unwrapped by /v1/unwrap (grant datakey:unwrap), whichever
 * mode sealed it, so its plaintext never crosses the network; `--server-side` sends it through
 * /v1/decrypt/stream instead (grant decrypt). A message (format v1, binary or `ev1:`) goes to
 * /v1/decrypt/binary. To a file, nothing is left unless every segment verified (output.ts).
 */
import { Readable } from 'node:stream';
import { sameContext, toContext } from '../../format/context.js';
import { EnvelopeError } from '../../format/errors.js';
import { STREAM_FORMAT_VERSION } from '../../format/stream-format.js';
import { STREAM_TEXT_PREFIX } from '../../format/stream-text-form.js';
import { openStream } from '../client-side.js';
import type { EnvelopeClient } from '../client.js';
import type { Context } from '../context-header.js';
import { peek } from '../peek.js';
import { COMMON_USAGE, contextOption, stringOption, type Command } from './command.js';
import { UsageError } from './exit-codes.js';
import { openInput, targetsFor, type Input } from './input.js';
import { writeOutput } from './output.js';
import { progressFor } from './progress.js';

/** A v1 message is one request body (BODY_LIMIT_BYTES); a larger input is refused here. */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

export const decryptCommand: Command = {
  name: 'decrypt',
  summary: 'decrypt what encrypt (either mode) or the service wrote; the format is read from the input',
  usage: `usage: envelope decrypt [--server-side] [--context k=v]... [-o OUT] [IN...]

Decrypts IN (standard input when left out or "-") to OUT (standard output when left out).
Several INs: each beside itself, without its .ev2/.ev1 suffix (or with .out added).

A stream (format v2: what "envelope encrypt" and /v1/encrypt/stream write) is opened here with
its data key from /v1/unwrap (grant datakey:unwrap): the plaintext never crosses the network.
A message (format v1, binary or ev1: text) is decrypted by /v1/decrypt/binary (grant decrypt).

  --server-side        decrypt a stream through /v1/decrypt/stream instead (grant decrypt)
  --context k=v        the context expected, repeatable: a ciphertext bound to another fails
  -o, --output OUT     the output file: written to a temporary file beside it, renamed only
                       after the last segment verified; on any failure removed, exit non-zero

To standard output, bytes are written as they verify and a failure exits non-zero after the last
verified segment: a pipeline must check the status (set -o pipefail).

${COMMON_USAGE}`,
  options: {
    'server-side': { type: 'boolean' },
    context: { type: 'string', multiple: true },
    output: { type: 'string', short: 'o' },
  },
  async run({ values, operands, io, client }) {
    const expected = contextOption(values);
    const output = stringOption(values, 'output');
    if (operands.length > 1 && output !== undefined) throw new UsageError('-o takes one input; several inputs are each written beside themselves');
    const targets = targetsFor(operands, output, plaintextName);
    const inputs = operands.length === 0 ? [undefined] : operands;
    for (const [index, path] of inputs.entries()) {
      const input = await openInput(path, io.stdin);
      const plaintext = await decrypted(client(), input, expected, values['server-side'] === true);
      const progress = progressFor(`decrypt ${input.name}`, input.size, io.stderr);
      try {
        await writeOutput(plaintext, targets[index], io.stdout, (bytes) => progress.tick(bytes));
      } finally {
        progress.stop();
      }
    }
    return 0;
  },
};

function plaintextName(input: string): string {
  const stripped = input.replace(/\.ev[12]$/, '');
  return stripped === input ? `${input}.out` : stripped;
}

async function decrypted(client: EnvelopeClient, input: Input, expected: Context | undefined, serverSide: boolean): Promise<Readable> {
  const { head, rest } = await peek(input.stream, STREAM_TEXT_PREFIX.length);
  const isStream = head[0] === STREAM_FORMAT_VERSION || head.subarray(0, STREAM_TEXT_PREFIX.length).toString('latin1') === STREAM_TEXT_PREFIX;
  if (isStream && serverSide) {
    return client.decryptStream(rest, { ...(expected ? { context: expected } : {}), ...(input.size === undefined ? {} : { contentLength: input.size }) });
  }
  if (isStream) {
    return openStream(client, rest, {
      onHeader: (header) => {
        if (expected && !sameContext(toContext(expected), header.context)) {
          throw new EnvelopeError('ContextMismatch', 'the given context differs from the one stored in the ciphertext');
        }
      },
    });
  }
  const message = await readAll(rest, MAX_MESSAGE_BYTES);
  const answer = await client.decryptBinary(message, expected ? { context: expected } : {});
  return Readable.from([answer.bytes]);
}

async function readAll(stream: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > limit) throw new EnvelopeError('UnsupportedFormat', 'not a stream (format v2), and larger than any message (format v1)');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
