/**
 * `envelope header`: what a ciphertext's header says (inspect.ts): format, KMS key, context,
 * segment size and count, sizes. No key, no service call, no secret printed.
 */
import { describeCiphertext, type CiphertextDescription } from '../inspect.js';
import { type Command } from './command.js';
import { openInput } from './input.js';

export const headerCommand: Command = {
  name: 'header',
  summary: 'print a ciphertext\'s format, KMS key, context, segments and sizes (v1, v2, ev1:, ev2:); no secrets, no service call',
  usage: `usage: envelope header [--json] [IN...]

Reads IN (standard input when left out or "-") and prints what its header says: format version and
form, KMS key, encryption context, data key id (as the audit log names it), segment size and
count, ciphertext and plaintext sizes. Nothing is verified: only a decrypt authenticates.

  --json               one JSON object per input, one per line`,
  options: { json: { type: 'boolean' } },
  async run({ values, operands, io }) {
    const inputs = operands.length === 0 ? [undefined] : operands;
    for (const path of inputs) {
      const input = await openInput(path, io.stdin);
      const description = await describeCiphertext(input.stream);
      io.stdout.write(values.json ? `${JSON.stringify({ input: input.name, ...description })}\n` : render(input.name, description, inputs.length > 1));
    }
    return 0;
  },
};

function render(name: string, d: CiphertextDescription, named: boolean): string {
  const context = Object.entries(d.context);
  const lines = [
    ...(named ? [`input:            ${name}`] : []),
    `format:           ${d.formatVersion} (${d.formatVersion === 2 ? 'stream' : 'message'}, ${d.form === 'text' ? `text, ev${d.formatVersion}:` : 'binary'})`,
    `kms key:          ${d.keyId}`,
    `context:          ${context.length === 0 ? '(none)' : context.map(([key, value]) => `${key}=${value}`).join(', ')}`,
    `data key id:      ${d.dataKeyId}`,
    ...(d.segmentSize === undefined ? [] : [`segment size:     ${d.segmentSize}`, `segments:         ${d.segments}`]),
    `ciphertext bytes: ${d.ciphertextBytes}`,
    `plaintext bytes:  ${d.plaintextBytes ?? 'unknown (truncated)'}`,
    ...(d.truncated ? ['truncated:        yes (the last segment is cut; decrypt will fail)'] : []),
  ];
  return `${lines.join('\n')}\n${named ? '\n' : ''}`;
}
