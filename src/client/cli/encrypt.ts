/**
 * `envelope encrypt`: server-side through POST /v1/encrypt/stream (default), or client-side
 * (`--client-side`): a data key from /v1/datakey and the payload sealed here, never sent. Both
 * write stream format v2, which `envelope decrypt` and the service's stream routes open.
 */
import { UsageError } from './exit-codes.js';
import { COMMON_USAGE, contextOption, stringOption, type Command } from './command.js';
import { openInput, targetsFor } from './input.js';
import { writeOutput } from './output.js';
import { progressFor } from './progress.js';
import { sealStream } from '../client-side.js';

export const STREAM_SUFFIX = '.ev2';

export const encryptCommand: Command = {
  name: 'encrypt',
  summary: 'encrypt files or standard input (server-side, or --client-side) into stream format v2',
  usage: `usage: envelope encrypt [--client-side] [--key-id K] [--context k=v]... [-o OUT] [IN...]

Encrypts IN (standard input when left out or "-") to OUT (standard output when left out).
Several INs: each to IN${STREAM_SUFFIX} beside it. The output is stream format v2 (docs/FORMAT.md).

  --key-id K           the KMS key (alias/..., key id or ARN; default: the service's DEFAULT_KEY_ID)
  --context k=v        encryption context, repeatable (bound to the ciphertext; needed by the policy)
  --client-side        seal here with a data key from /v1/datakey (grant datakey:plaintext):
                       the plaintext never leaves this machine. Default: the service's stream route
                       (grant encrypt)
  -o, --output OUT     the output file (written to a temporary file, renamed when complete)

${COMMON_USAGE}`,
  options: {
    'client-side': { type: 'boolean' },
    'key-id': { type: 'string' },
    context: { type: 'string', multiple: true },
    output: { type: 'string', short: 'o' },
  },
  async run({ values, operands, io, client, note }) {
    const keyId = stringOption(values, 'key-id');
    const context = contextOption(values);
    const output = stringOption(values, 'output');
    if (operands.length > 1 && output !== undefined) throw new UsageError('-o takes one input; several inputs are each written beside themselves');
    const targets = targetsFor(operands, output, (input) => input + STREAM_SUFFIX);
    const inputs = operands.length === 0 ? [undefined] : operands;
    const service = client();
    for (const [index, path] of inputs.entries()) {
      const input = await openInput(path, io.stdin);
      const options = { ...(keyId ? { keyId } : {}), ...(context ? { context } : {}) };
      const sealed = values['client-side']
        ? sealStream(service, input.stream, options)
        : service.encryptStream(input.stream, { ...options, ...(input.size === undefined ? {} : { contentLength: input.size }) });
      const progress = progressFor(`encrypt ${input.name}`, input.size, io.stderr);
      try {
        await writeOutput(sealed, targets[index], io.stdout, (bytes) => progress.tick(bytes));
      } finally {
        progress.stop();
      }
      if (targets[index] !== undefined && inputs.length > 1) note(`${input.name} -> ${targets[index]}`);
    }
    return 0;
  },
};
