/**
 * pino `redact` paths: a backstop in case a secret-bearing field is ever put into an event
 * object by mistake (say, a request body spread into requestParameters). The event types have
 * no such fields; this only catches what the types could not (values typed `any`, spreads).
 *
 * Paths are listed per container instead of using wildcards at the top level: pino then runs
 * the redactor only on these few objects, and user data that merely has such a key name
 * (an encryption context entry called "token", say) is left alone: it is not a secret, KMS
 * and CloudTrail see it too.
 */
export const REDACT_CENSOR = '[REDACTED]';

export const SECRET_FIELD_NAMES = [
  'plaintext',
  'ciphertext',
  'plaintextKey',
  'wrappedKey',
  'token',
  'authorization',
  'aad',
] as const;

const CONTAINERS = [
  '',
  'userIdentity.',
  'requestParameters.',
  'responseElements.',
  'additionalEventData.',
  'additionalEventData.items[*].',
  'serviceEventDetails.',
];

export const REDACT_PATHS: string[] = CONTAINERS.flatMap((container) =>
  SECRET_FIELD_NAMES.map((name) => `${container}${name}`),
);
