/**
 * Header codecs of the binary API (/v1/encrypt/binary, /v1/decrypt/binary), where the body is
 * raw bytes and everything else travels in headers.
 *
 * The encryption context is a header value in application/x-www-form-urlencoded form
 * (`tenant=acme&purpose=billing`, UTF-8, percent-encoded), the one string-map encoding every
 * HTTP client already has (URLSearchParams). Parsing is strict where URLSearchParams is
 * lenient: a malformed escape or invalid UTF-8 is a 400 instead of a silently substituted
 * U+FFFD, and a repeated key is a 400 instead of "last one wins", because either would bind
 * a different context than the caller meant.
 */
import { sortedContextEntries } from '../../format/context.js';
import type { EncryptionContext } from '../../kms/provider.js';
import { ENVELOPE_LIMITS } from '../../format/limits.js';
import { ProblemError } from '../problem.js';

export const KEY_ID_HEADER = 'x-envelope-key-id';
export const CONTEXT_HEADER = 'x-envelope-context';
export const AAD_HEADER = 'x-envelope-aad';

/**
 * Form-encoded pairs of printable ASCII: a key of at least one character other than `%&=`,
 * optionally `=` and a value, `&` between pairs, and `%` only as a two-hex-digit escape. Each
 * character or escape is one byte of the decoded key or value, so the pattern states the byte
 * bounds exactly: keys of 1 to 256 bytes, values of at most 2048, at most 64 pairs (the total
 * needs no rule of its own: the header's 8192 characters cannot decode to more bytes).
 * What no pattern can say (checked by parseContextHeader, a 400 InvalidContext): escapes must
 * decode to UTF-8, and keys must not repeat.
 */
const KEY_BYTE = "(?:[!-$'-<>-~]|%[0-9A-Fa-f]{2})";
const VALUE_BYTE = "(?:[!-$'-~]|%[0-9A-Fa-f]{2})";
const CONTEXT_PAIR =
  `${KEY_BYTE}{1,${ENVELOPE_LIMITS.maxContextKeyBytes}}(?:=${VALUE_BYTE}{0,${ENVELOPE_LIMITS.maxContextValueBytes}})?`;
export const CONTEXT_HEADER_PATTERN = `^(?:${CONTEXT_PAIR}(?:&${CONTEXT_PAIR}){0,${ENVELOPE_LIMITS.maxContextPairs - 1}})?$`;

/** The header's rules beyond its pattern, for the OpenAPI description. */
export const CONTEXT_HEADER_RULES =
  'Each character or `%XX` escape is one byte of the decoded context: keys of 1 to ' +
  `${ENVELOPE_LIMITS.maxContextKeyBytes} bytes, values of at most ${ENVELOPE_LIMITS.maxContextValueBytes}, ` +
  `at most ${ENVELOPE_LIMITS.maxContextPairs} pairs (the pattern states these). Beyond the pattern: escapes must decode to UTF-8 and ` +
  'a key must not repeat (400 `InvalidContext` otherwise); at most ' +
  `${ENVELOPE_LIMITS.maxContextTotalBytes} UTF-8 bytes in total, which this header's length cannot exceed.`;

/**
 * Header lengths: all three together stay under Node's 16 KiB limit on a request's headers
 * (beyond it Node itself answers 431 before any route runs). A context whose encoded form is
 * longer than 8 KiB (KMS allows 8 KiB of UTF-8, which percent-encoding can triple) needs the
 * JSON API; so does an aad over 3 KiB.
 */
export const MAX_CONTEXT_HEADER_CHARS = 8192;
export const MAX_AAD_HEADER_CHARS = 4096;

/**
 * Parses the context header; undefined when absent. Throws a 400 InvalidContext problem for its
 * syntax; the KMS size limits are checked with every other context (operations/context.ts).
 */
export function parseContextHeader(value: string | undefined): EncryptionContext | undefined {
  if (value === undefined) return undefined;
  const context = Object.create(null) as Record<string, string>;
  if (value === '') return context;
  // Header bytes arrive as latin1: a raw non-ASCII byte has no one meaning, so it must be escaped.
  if (!/^[\x21-\x7e]*$/.test(value)) throw invalid('the context header must be printable ASCII: percent-encode the rest');
  for (const pair of value.split('&')) {
    const equals = pair.indexOf('=');
    const key = decodeComponent(equals < 0 ? pair : pair.slice(0, equals));
    const entryValue = equals < 0 ? '' : decodeComponent(pair.slice(equals + 1));
    if (Object.hasOwn(context, key)) throw invalid(`the context header repeats a key`);
    context[key] = entryValue;
  }
  return context;
}

/** The context as a header value: keys and values percent-encoded, in the canonical order. */
export function formatContextHeader(entries: readonly (readonly [string, string])[]): string {
  return entries.map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`).join('&');
}

/** A stored context as the header value: its entries in canonical order, form-encoded. */
export function contextHeaderOf(context: EncryptionContext): string {
  return formatContextHeader(sortedContextEntries(context));
}

/**
 * A value that may hold any UTF-8 (a key ARN read from a ciphertext) made safe for a header:
 * bytes outside printable ASCII, and `%`, are percent-encoded. Real ARNs pass unchanged.
 */
export function headerSafe(value: string): string {
  if (/^[\x21-\x24\x26-\x7e]*$/.test(value)) return value;
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    out += byte > 0x20 && byte < 0x7f && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function decodeComponent(text: string): string {
  try {
    return decodeURIComponent(text.replaceAll('+', ' '));
  } catch {
    throw invalid('the context header has a malformed percent-escape or invalid UTF-8');
  }
}

function invalid(detail: string): ProblemError {
  return new ProblemError(400, 'InvalidContext', detail);
}
