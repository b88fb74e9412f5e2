/** `envelope keys`: the keys this token may use, with the operations and contexts its grants allow (GET /v1/keys). */
import { COMMON_USAGE, type Command } from './command.js';

export const keysCommand: Command = {
  name: 'keys',
  summary: 'list the keys this token may use, with the operations and contexts allowed',
  usage: `usage: envelope keys [--json]

Lists the KMS keys the token may use (GET /v1/keys): aliases, operations, and the context each
grant requires.

  --json               the service's answer as is

${COMMON_USAGE}`,
  options: { json: { type: 'boolean' } },
  async run({ values, io, client }) {
    const answer = await client().keys();
    if (values.json) {
      io.stdout.write(`${JSON.stringify(answer)}\n`);
      return 0;
    }
    for (const key of answer.keys) {
      io.stdout.write(`${key.aliases.join(', ') || '(no alias)'}\n  ${key.keyId}\n  operations: ${key.operations.join(', ')}\n`);
      for (const grant of key.grants) {
        const required = grant.context.required.length === 0 ? 'no context' : `context ${grant.context.required.join(', ')}`;
        const fixed = Object.entries(grant.context.equals).map(([k, v]) => `${k}=${v}`);
        io.stdout.write(`  rule ${grant.rule}: ${grant.operations.join(', ')}; ${required}${fixed.length ? ` (${fixed.join(', ')})` : ''}\n`);
      }
    }
    return 0;
  },
};
