/**
 * The schema pieces the raw-bytes routes share (the binary and the stream routes): the
 * octet-stream body and response, and the context and aad headers.
 */
import { Type } from 'typebox';
import { CONTEXT_HEADER_PATTERN, CONTEXT_HEADER_RULES, MAX_AAD_HEADER_CHARS, MAX_CONTEXT_HEADER_CHARS } from './binary-headers.js';
import { BASE64_PATTERN } from './schemas.js';

export const OCTET_STREAM = 'application/octet-stream';

/**
 * The body schema. It has no `type` because Ajv would check the parsed Buffer against it (a
 * Buffer is no JSON `string`); any bytes are acceptable, so nothing is lost. The OpenAPI
 * document gets `contentMediaType: application/octet-stream` added (http/openapi/openapi.ts), OpenAPI
 * 3.1's way of saying "raw bytes".
 */
export function octetBody(description: string) {
  return { content: { [OCTET_STREAM]: { schema: { description } } } };
}

export function octetResponse(description: string, headers: Record<string, object>) {
  return { description, headers, content: { [OCTET_STREAM]: { schema: { contentMediaType: OCTET_STREAM } } } };
}

export const ContextHeader = (description: string, example?: string) =>
  Type.String({
    maxLength: MAX_CONTEXT_HEADER_CHARS,
    pattern: CONTEXT_HEADER_PATTERN,
    description: `${description} ${CONTEXT_HEADER_RULES}`,
    ...(example ? { examples: [example] } : {}),
  });

/**
 * A plain string with the base64 pattern: no `contentEncoding` (which the document would turn
 * into `format: byte`, a file picker in Swagger UI) and no example (Swagger UI pre-fills
 * parameters with their example, and an aad sent without the caller noticing makes a
 * ciphertext nobody can open without it).
 */
export const AadHeader = (description: string) => Type.String({ pattern: BASE64_PATTERN, maxLength: MAX_AAD_HEADER_CHARS, description });
