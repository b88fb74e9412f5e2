/**
 * The JSON routes' body parser: Fastify's own (with its prototype-poisoning guards), behind two
 * cheap bounds checked before JSON.parse runs.
 *
 * - Size: JSON_BODY_LIMIT_BYTES (at most BODY_LIMIT_BYTES), small by default. Large payloads
 *   belong on the /binary routes, where no base64 or parse tree is built.
 * - Nesting: no request this API takes is nested more than four levels, but JSON.parse builds
 *   any depth, and an 8 MiB `[[[…]]]` took seconds of event loop before the schema could refuse
 *   it. One linear pass over the text refuses deeper bodies first.
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
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const char = text.charCodeAt(i);
    if (inString) {
      if (char === 0x5c) i += 1; // backslash: skip the escaped character
      else if (char === 0x22) inString = false;
    } else if (char === 0x22) {
      inString = true;
    } else if (char === 0x7b || char === 0x5b) {
      depth += 1;
      if (depth > max) return true;
    } else if (char === 0x7d || char === 0x5d) {
      depth -= 1;
    }
  }
  return false;
}
