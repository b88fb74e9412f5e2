/**
 * The client library is typed from openapi.yaml: src/client/api.ts must be what
 * openapi-typescript makes of the committed document (`npm run openapi` writes both), so a
 * change of the contract that the client's types do not follow fails here, and tsc then finds
 * every call the change breaks.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLIENT_TYPES_PATH, renderClientTypes } from '../../scripts/generate-client-types.js';

describe('src/client/api.ts', () => {
  it('is openapi-typescript\'s output for the committed openapi.yaml (else: npm run openapi)', async () => {
    expect(readFileSync(CLIENT_TYPES_PATH, 'utf8') === (await renderClientTypes())).toBe(true);
  }, 60_000);
});
