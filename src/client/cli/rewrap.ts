/**
 * `envelope rewrap`: moves a ciphertext to another KMS key through POST /v1/rewrap (grant
 * rewrap on both keys). Only the key block changes; the payload is never decrypted. A message
 * (v1) keeps its form; a stream (v2, rewrap-stream.ts) is written in binary form.
 */
import { Readable } from 'node:stream';
import { STREAM_FORMAT_VERSION } from '../../format/stream-format.js';
import { STREAM_TEXT_PREFIX } from '../../format/stream-text-form.js';
import { CIPHERTEXT_PREFIX, parseCiphertext } from '../../format/format.js';
import { peek } from '../peek.js';
import { rewrapStream } from '../rewrap-stream.js';
import { COMMON_USAGE, stringOption, type Command } from './command.js';
import { UsageError } from './exit-codes.js';
import { openInput, targetsFor } from './input.js';
import { writeOutput } from './output.js';

const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

export const rewrapCommand: Command = {
  name: 'rewrap',
  summary: 'move ciphertexts to another KMS key without decrypting them',
  usage: `usage: envelope rewrap [--key-id K] [-o OUT] [IN...]

Re-wraps the data key of IN (standard input when left out or "-") under K (default: the service's
DEFAULT_KEY_ID) and writes the ciphertext to OUT (standard output when left out); several INs are
rewritten in place (through a temporary file each). The payload is never decrypted. Needs the
rewrap grant on both keys. A stream (v2) is written in binary form; a message (v1) keeps its form.

  --key-id K           the destination KMS key
  -o, --output OUT     the output file (written to a temporary file, renamed when complete)

${COMMON_USAGE}`,
  options: { 'key-id': { type: 'string' }, output: { type: 'string', short: 'o' } },
  async run({ values, operands, io, client }) {
    const keyId = stringOption(values, 'key-id');
    const output = stringOption(values, 'output');
    if (operands.length > 1 && output !== undefined) throw new UsageError('-o takes one input; several inputs are each rewritten in place');
    const targets = targetsFor(operands, output, (input) => input);
    const inputs = operands.length === 0 ? [undefined] : operands;
    for (const [index, path] of inputs.entries()) {
      const input = await openInput(path, io.stdin);
      const { head, rest } = await peek(input.stream, STREAM_TEXT_PREFIX.length);
      const start = head.subarray(0, STREAM_TEXT_PREFIX.length).toString('latin1');
      let result: Readable;
      if (head[0] === STREAM_FORMAT_VERSION || start === STREAM_TEXT_PREFIX) result = rewrapStream(client(), rest, keyId);
      else {
        const chunks: Buffer[] = [];
        let length = 0;
        for await (const chunk of rest as AsyncIterable<Buffer>) {
          length += chunk.length;
          if (length > MAX_MESSAGE_BYTES) throw new UsageError(`${input.name}: not a ciphertext of this service`);
          chunks.push(chunk);
        }
        const bytes = Buffer.concat(chunks);
        const text = start.startsWith(CIPHERTEXT_PREFIX);
        const ciphertext = text ? bytes.toString('latin1').trim() : `${CIPHERTEXT_PREFIX}${bytes.toString('base64url')}`;
        const answer = await client().rewrap({ ciphertext, ...(keyId ? { keyId } : {}) });
        result = Readable.from([text ? Buffer.from(`${answer.ciphertext}\n`, 'latin1') : binaryOf(answer.ciphertext)]);
      }
      await writeOutput(result, targets[index], io.stdout);
    }
    return 0;
  },
};

function binaryOf(text: string): Buffer {
  parseCiphertext(text); // the service's answer, checked before it replaces anything
  return Buffer.from(text.slice(CIPHERTEXT_PREFIX.length), 'base64url');
}
