/**
 * The contract's bounds are the service's: for every operation that takes an encryption
 * context (in the JSON body, in a batch item, or in the x-envelope-context header of the binary
 * and stream routes), openapi.yaml's schema for that request, compiled with a stock Ajv, and the
 * service agree on inputs at the UTF-8 byte bounds: a request the contract accepts is never a
 * 400, one it refuses is always a 400. The context total, which no JSON schema can state, is
 * read from the contract's own description of it.
 *
 * The inputs sit just under and just over each bound (key 256 bytes, value 2048 bytes, total
 * 8192 bytes, 64 pairs), built from 1-, 2-, 3- and 4-byte characters, combining marks included
 * (a key of 90 three-byte combining marks was valid by the contract and refused by the service).
 */
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { formatContextHeader } from '../../src/http/schemas/binary-headers.js';
import { AUTH, buildTestApp, type TestApp } from '../helpers/app.js';
import { seeded, testSeed } from '../helpers/seed.js';

const SEED = testSeed('test/http/contract-bounds.test.ts');
const RUNS = process.env.DEEP_TESTS === '1' ? 120 : 30;

// ---- The contract -------------------------------------------------------------------------

type Schema = Record<string, unknown>;
const document = parse(readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8')) as {
  paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: Schema }> }; parameters?: { name: string; in: string; schema: Schema }[] }>>;
};
// A stock Ajv: what any client or tool reading the document would apply (patterns as unicode
// regexps, lengths in code points), with no knowledge of this service.
const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: false });

function bodySchema(path: string): ValidateFunction {
  const schema = document.paths[path]?.post?.requestBody?.content['application/json']?.schema;
  if (!schema) throw new Error(`openapi.yaml has no JSON body for POST ${path}`);
  return ajv.compile(schema);
}

function headerSchema(path: string, name: string): ValidateFunction {
  const parameter = document.paths[path]?.post?.parameters?.find((p) => p.in === 'header' && p.name === name);
  if (!parameter) throw new Error(`openapi.yaml has no ${name} header on POST ${path}`);
  return ajv.compile(parameter.schema);
}

/** The total the contract states in words (no JSON schema can state a sum), on every context. */
function documentedTotal(path: string): number {
  const text = JSON.stringify(document.paths[path]?.post?.requestBody ?? document.paths[path]?.post?.parameters);
  const match = /at most (\d+) UTF-8 bytes in total/.exec(text);
  if (!match) throw new Error(`POST ${path}: the contract does not state the context total size`);
  return Number(match[1]);
}

// ---- Inputs at the byte bounds --------------------------------------------------------------

/** Characters by UTF-8 width; combining marks (U+0301: 2 bytes, U+20D0: 3 bytes) among them. */
const CHARS: Record<1 | 2 | 3 | 4, string[]> = {
  1: ['a', 'Z', '7', '-', ' '],
  2: ['é', 'ж', '\u0301'],
  3: ['€', '中', '\u20d0'],
  4: ['😀', '𝄞'],
};
type Width = keyof typeof CHARS;
const utf8 = (text: string) => Buffer.byteLength(text, 'utf8');

/**
 * A string of about `target` bytes: characters of the given widths in the drawn order, then
 * (when 1-byte characters are allowed) padded to exactly `target`.
 */
function stringOfBytes(target: number, widths: Width[], picks: number[]): string {
  let out = '';
  let bytes = 0;
  for (let i = 0; ; i++) {
    const pick = picks[i % picks.length]!;
    const width = widths[pick % widths.length]!;
    if (bytes + width > target) {
      const fits = widths.filter((w) => bytes + w <= target);
      if (fits.length === 0) return out;
      const smallest = Math.min(...fits) as Width;
      out += CHARS[smallest][0];
      bytes += smallest;
      continue;
    }
    const pool = CHARS[width];
    out += pool[pick % pool.length];
    bytes += width;
  }
}

const widths = fc.subarray<Width>([1, 2, 3, 4], { minLength: 1 });
const oneWidth = fc.constantFrom<Width[]>([1], [2], [3], [4]);
const picks = fc.array(fc.nat(), { minLength: 1, maxLength: 12 });
const near = (bound: number, spread = 4) => fc.integer({ min: bound - spread, max: bound + spread });
const nearBytes = (bound: number, widthChoice = widths) =>
  fc.tuple(near(bound), widthChoice, picks).map(([target, w, p]) => stringOfBytes(target, w, p));

type Context = Record<string, string>;
const context: fc.Arbitrary<Context> = fc.oneof(
  // A key at 256 bytes.
  fc.tuple(nearBytes(256), fc.string({ maxLength: 8 })).map(([key, value]): Context => ({ [key]: value })),
  // A value at 2048 bytes.
  fc.tuple(nearBytes(2048)).map(([value]): Context => ({ tenant: value })),
  // The total at 8192 bytes: four pairs (`k0`..`k3`), each value a quarter of the total.
  fc.tuple(near(8192, 8), oneWidth, picks).map(([total, w, p]): Context => {
    const out: Context = {};
    for (let i = 0; i < 4; i++) out[`k${i}`] = stringOfBytes(Math.floor(total / 4) - 2, w, p);
    return out;
  }),
  // The number of pairs at 64.
  fc.integer({ min: 62, max: 66 }).map((n): Context => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']))),
);

const totalBytes = (c: Context) => Object.entries(c).reduce((sum, [k, v]) => sum + utf8(k) + utf8(v), 0);

// ---- The service ----------------------------------------------------------------------------

let t: TestApp;
let base: string;
let ciphertext: string;
let envelope: Buffer;

interface Answer {
  status: number;
  body: unknown;
}

async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const binary = Buffer.isBuffer(body);
  const response = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { ...AUTH, 'content-type': binary ? 'application/octet-stream' : 'application/json', ...headers },
    body: binary ? body : JSON.stringify(body),
  });
  const bytes = Buffer.from(await response.arrayBuffer());
  const json = response.headers.get('content-type')?.includes('json') ? (JSON.parse(bytes.toString('utf8')) as unknown) : undefined;
  return { status: response.status, body: json };
}

beforeAll(async () => {
  t = await buildTestApp({
    // Every drawn context is a cache partition of its own: a KMS call each.
    env: { KMS_BUDGET_PER_SECOND: '100000', KMS_BUDGET_BURST: '100000', KMS_PACE_PER_SECOND: '100000' },
  });
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  const encrypted = await post('/v1/encrypt', { plaintext: 'aGk=' });
  expect(encrypted.status).toBe(200);
  ciphertext = (encrypted.body as { ciphertext: string }).ciphertext;
  envelope = Buffer.from(ciphertext.slice('ev1:'.length), 'base64url');
});
afterAll(async () => t?.close());

/** Whether the service refused the request (or, for a batch, its one item) as a bad request. */
function refused(answer: Answer, batch: boolean): boolean {
  if (!batch) return answer.status === 400;
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
  const [result] = (answer.body as { results: { error?: { status: number } }[] }).results;
  return result?.error?.status === 400;
}

/** Both sides of every bound must be drawn, or the property proves nothing. */
function outcomes() {
  const seen = { accepted: 0, refused: 0 };
  return {
    note: (accepted: boolean) => (accepted ? seen.accepted++ : seen.refused++),
    expectBoth: () => expect(seen.accepted > 0 && seen.refused > 0, JSON.stringify(seen)).toBe(true),
  };
}

const describeAnswer = (answer: Answer) => `${answer.status} ${JSON.stringify(answer.body)?.slice(0, 300)}`;

// ---- JSON bodies ----------------------------------------------------------------------------

const JSON_OPERATIONS: { path: string; body: (c: Context) => unknown; batch?: boolean }[] = [
  { path: '/v1/encrypt', body: (c) => ({ plaintext: 'aGk=', context: c }) },
  { path: '/v1/decrypt', body: (c) => ({ ciphertext, context: c }) },
  { path: '/v1/encrypt/batch', body: (c) => ({ items: [{ plaintext: 'aGk=', context: c }] }), batch: true },
  { path: '/v1/decrypt/batch', body: (c) => ({ items: [{ ciphertext, context: c }] }), batch: true },
  { path: '/v1/rewrap', body: (c) => ({ ciphertext, context: c }) },
  { path: '/v1/datakey', body: (c) => ({ context: c }) },
  { path: '/v1/unwrap', body: (c) => ({ keyId: 'alias/default', wrappedKey: 'AAAA', context: c }) },
  { path: '/v1/admin/cache/evict', body: (c) => ({ context: c }) },
  { path: '/v1/admin/cache/evict', body: (c) => ({ keyId: 'alias/default', context: c }) },
];

describe('the contract and the service agree on context bounds (JSON bodies)', () => {
  for (const { path, body, batch = false } of JSON_OPERATIONS) {
    it(`POST ${path} ${JSON.stringify(body({ '…': '…' }))}`, async () => {
      const schema = bodySchema(path);
      const total = documentedTotal(path);
      const seen = outcomes();
      await fc.assert(
        fc.asyncProperty(context, async (c) => {
          const request = body(c);
          const accepted = schema(request) && totalBytes(c) <= total;
          seen.note(accepted);
          const answer = await post(path, request);
          expect(refused(answer, batch), `${accepted ? 'contract accepts' : 'contract refuses'}; service: ${describeAnswer(answer)}`).toBe(!accepted);
        }),
        seeded(SEED, RUNS),
      );
      seen.expectBoth();
    });
  }
});

// ---- The x-envelope-context header ------------------------------------------------------------

const HEADER_OPERATIONS: { path: string; body: () => Buffer }[] = [
  { path: '/v1/encrypt/binary', body: () => Buffer.from('hi') },
  { path: '/v1/decrypt/binary', body: () => envelope },
  { path: '/v1/encrypt/stream', body: () => Buffer.from('hi') },
  // Not a stream: the header is judged before the body is read (422 otherwise).
  { path: '/v1/decrypt/stream', body: () => Buffer.from('not a stream') },
];

// Node refuses a request whose headers pass 16 KiB (431) before any route: the header's own
// limit (8192 characters) is what the contract states and what these inputs probe.
const HEADER_INPUT_MAX_CHARS = 12_000;

describe('the contract and the service agree on context bounds (x-envelope-context)', () => {
  for (const { path, body } of HEADER_OPERATIONS) {
    it(`POST ${path}`, async () => {
      const schema = headerSchema(path, 'x-envelope-context');
      const seen = outcomes();
      await fc.assert(
        fc.asyncProperty(context, async (c) => {
          const header = formatContextHeader(Object.entries(c));
          fc.pre(header.length <= HEADER_INPUT_MAX_CHARS);
          // The header's rules beyond its schema (UTF-8 escapes, no repeated key) hold by construction.
          const accepted = schema(header);
          seen.note(accepted);
          const answer = await post(path, body(), { 'x-envelope-context': header });
          expect(answer.status === 400, `${accepted ? 'contract accepts' : 'contract refuses'}; service: ${describeAnswer(answer)}`).toBe(!accepted);
        }),
        seeded(SEED, RUNS),
      );
      seen.expectBoth();
    });
  }
});

// ---- Key ids --------------------------------------------------------------------------------

describe('the contract and the service agree on key id bounds', () => {
  const keyId = fc.tuple(near(2048, 3), fc.constantFrom<Width[]>([1], [1, 2], [1, 4])).map(([length, w]) => `alias/${stringOfBytes(length - 6, w, [0, 1])}`);

  it('POST /v1/encrypt keyId', async () => {
    const schema = bodySchema('/v1/encrypt');
    const seen = outcomes();
    await fc.assert(
      fc.asyncProperty(keyId, async (id) => {
        const request = { plaintext: 'aGk=', keyId: id };
        const accepted = schema(request);
        seen.note(accepted);
        const answer = await post('/v1/encrypt', request);
        // An unknown alias is a 404; only a malformed one is a 400.
        expect(answer.status === 400, `${accepted ? 'contract accepts' : 'contract refuses'}; service: ${describeAnswer(answer)}`).toBe(!accepted);
      }),
      seeded(SEED, RUNS),
    );
    seen.expectBoth();
  });

  it('POST /v1/encrypt/binary x-envelope-key-id', async () => {
    const schema = headerSchema('/v1/encrypt/binary', 'x-envelope-key-id');
    const seen = outcomes();
    await fc.assert(
      fc.asyncProperty(keyId, async (id) => {
        fc.pre(/^[\x21-\x7e]*$/.test(id)); // a header value carries no raw non-ASCII
        const accepted = schema(id);
        seen.note(accepted);
        const answer = await post('/v1/encrypt/binary', Buffer.from('hi'), { 'x-envelope-key-id': id });
        expect(answer.status === 400, `${accepted ? 'contract accepts' : 'contract refuses'}; service: ${describeAnswer(answer)}`).toBe(!accepted);
      }),
      seeded(SEED, RUNS),
    );
    seen.expectBoth();
  });
});
