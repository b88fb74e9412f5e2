/**
 * The JSON routes' body parser: Fastify's own (with its prototype-poisoning guards), behind two
 * cheap bounds checked before JSON.parse runs.
 *
 * - Size: JSON_BODY_LIMIT_BYTES (at most BODY_LIMIT_BYTES), small by default. Large payloads
 *   belong on the /binary routes, where no base64 or parse tree is built.
 * - Nesting: no request this API takes is nested more than four levels, but JSON.parse builds
 *   any depth, and a body of megabytes of `[[[…]]]` would hold the event loop for a long time
 *   before the schema could refuse it. One linear pass over the text refuses deeper bodies first.
 */
import type { FastifyInstance } from 'fastify';
import { ProblemError } from './problem.js';

/** Deepest nesting accepted; the API's own bodies reach 4 (a batch item's context). */
export const MAX_JSON_DEPTH = 16;

export function registerJsonBodyParser(app: FastifyInstance, bodyLimit: number): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit }, (request, body, done) => {
    if (nestingExceeds(body as string, MAX_JSON_DEPTH)) {
      done(new ProblemError(400, 'JsonTooDeep', `the JSON body is nested more than ${MAX_JSON_DEPTH} levels deep`), undefined);
      return;
    }
    parseJson(request, body as string, done);
  });
}

/** True when arrays and objects nest deeper than `max`; brackets inside strings do not count. */
export function nestingExceeds(text: string, max: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i += 1) {
    const char = text.charCodeAt(i);
    if (char === 0x22) {
      i = closingQuote(text, i);
      if (i < 0) return false; // unterminated: JSON.parse reports it
    } else if (char === 0x7b || char === 0x5b) {
      depth += 1;
      if (depth > max) return true;
    } else if (char === 0x7d || char === 0x5d) {
      depth -= 1;
    }
  }
  return false;
}

/**
 * Index of the quote that closes the string opened at `open`, or -1. Jumps with indexOf rather
 * than walking each character: base64 payloads are long strings, and this keeps the scan a small
 * fraction of JSON.parse's own cost.
 */
function closingQuote(text: string, open: number): number {
  let quote = text.indexOf('"', open + 1);
  while (quote !== -1) {
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === 0x5c) backslashes += 1;
    if (backslashes % 2 === 0) return quote;
    quote = text.indexOf('"', quote + 1);
  }
  return -1;
}
