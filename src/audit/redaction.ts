/**
 * The audit log's redaction backstop, in case a secret-bearing field is ever put into an event
 * object by mistake (say, a request body spread into requestParameters). The event types have
 * no such fields; this only catches what the types could not (values typed `any`, spreads).
 *
 * Only the event's own containers are checked, by name, not the whole tree: user data that
 * merely has such a key name (an encryption context entry called "token", say) is left alone:
 * it is not a secret, KMS and CloudTrail see it too.
 *
 * Written here rather than with pino's `redact` option: its path matcher and selective clone
 * cost a noticeable share of a small request's CPU. This check allocates nothing unless it
 * finds a field to censor, and then copies only the containers on the way to it, never
 * mutating the caller's objects.
 */
import { censorNamedFields } from '../censor.js';

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

/** The event's containers below the top level whose own fields are checked. */
const CONTAINERS = ['userIdentity', 'requestParameters', 'responseElements', 'additionalEventData', 'serviceEventDetails'] as const;

type Fields = Record<string, unknown>;

function isObject(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function censorFields(fields: Fields): Fields {
  return censorNamedFields(fields, SECRET_FIELD_NAMES, REDACT_CENSOR);
}

/**
 * The event with every secret-named field of the top level, of its containers and of each
 * `additionalEventData.items[]` entry replaced by REDACT_CENSOR. Returns `event` itself when
 * there is nothing to censor (the normal case).
 */
export function censorSecretFields<T extends Fields>(event: T): T {
  let result = censorFields(event);
  for (const container of CONTAINERS) {
    const value = result[container];
    if (!isObject(value)) continue;
    let censored = censorFields(value);
    if (container === 'additionalEventData' && Array.isArray(censored.items)) {
      const items = censored.items as unknown[];
      const censoredItems = items.map((item) => (isObject(item) ? censorFields(item) : item));
      if (censoredItems.some((item, i) => item !== items[i])) censored = { ...censored, items: censoredItems };
    }
    if (censored !== value) result = { ...result, [container]: censored };
  }
  return result as T;
}
