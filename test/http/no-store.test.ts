/**
 * Every /v1 answer carries `Cache-Control: no-store`: plaintext, plaintext data keys and
 * ciphertexts must not be kept by a browser, proxy or client cache. Checked on every /v1
 * operation of openapi.yaml, for a success and for errors (no credentials, bad body), and for
 * /v1 answers no route produced (unknown path, wrong method). Operational routes are left alone.
 */
import { readFileSync } from 'node:fs';
import request from 'supertest';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPENAPI_PATH } from '../../scripts/generate-openapi.js';
import { AUTH, buildTestApp, type TestApp } from '../helpers/app.js';

const document = parse(readFileSync(OPENAPI_PATH, 'utf8')) as { paths: Record<string, Record<string, unknown>> };
const v1Operations = Object.entries(document.paths)
  .filter(([path]) => path.startsWith('/v1/'))
  .flatMap(([path, item]) => Object.keys(item).map((method) => ({ method: method.toUpperCase() as 'GET' | 'POST', path, name: `${method.toUpperCase()} ${path}` })));

let t: TestApp;
let ciphertext: string;
let streamCiphertext: Buffer;
let dataKey: { keyId: string; wrappedKey: string };
beforeAll(async () => {
  t = await buildTestApp();
  const encrypted = await call('POST', '/v1/encrypt', AUTH, { plaintext: 'aGVsbG8=' });
  ciphertext = (encrypted.body as { ciphertext: string }).ciphertext;
  const stream = await call('POST', '/v1/encrypt/stream', { ...AUTH, 'content-type': 'application/octet-stream' }, Buffer.from('hello')).buffer(true).parse((res, done) => {
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.on('end', () => done(null, Buffer.concat(chunks)));
  });
  streamCiphertext = stream.body as Buffer;
  dataKey = (await call('POST', '/v1/datakey', AUTH, {})).body as { keyId: string; wrappedKey: string };
});
afterAll(async () => t?.close());

function call(method: 'GET' | 'POST', path: string, headers: Record<string, string> = {}, payload?: string | Buffer | object) {
  const pending = (method === 'GET' ? request(t.app.server).get(path) : request(t.app.server).post(path)).set(headers);
  return payload === undefined ? pending : pending.send(payload);
}

/** A request each operation answers with 200. */
function successfulRequest(path: string): { headers?: Record<string, string>; payload?: string | Buffer | object } {
  const binary = { 'content-type': 'application/octet-stream' };
  switch (path) {
    case '/v1/encrypt':
      return { payload: { plaintext: 'aGVsbG8=' } };
    case '/v1/decrypt':
    case '/v1/rewrap':
      return { payload: { ciphertext } };
    case '/v1/encrypt/batch':
      return { payload: { items: [{ plaintext: 'aGVsbG8=' }] } };
    case '/v1/decrypt/batch':
      return { payload: { items: [{ ciphertext }] } };
    case '/v1/encrypt/binary':
      return { headers: binary, payload: Buffer.from('hello') };
    case '/v1/decrypt/binary':
      return { headers: binary, payload: Buffer.from(ciphertext.slice('ev1:'.length), 'base64url') };
    case '/v1/encrypt/stream':
      return { headers: binary, payload: Buffer.from('hello') };
    case '/v1/decrypt/stream':
      return { headers: binary, payload: streamCiphertext };
    case '/v1/datakey':
      return { payload: { includePlaintext: true } };
    case '/v1/unwrap':
      return { payload: { keyId: dataKey.keyId, wrappedKey: dataKey.wrappedKey } };
    case '/v1/keys':
    case '/v1/admin/cache':
    case '/v1/admin/policy':
    case '/v1/admin/policy/reload':
    case '/v1/admin/kms':
    case '/v1/admin/fleet':
      return {};
    case '/v1/admin/cache/evict':
      return { payload: { all: true } };
    default:
      throw new Error(`no successful request known for ${path}: add one`);
  }
}

describe('Cache-Control: no-store on /v1', () => {
  it('covers the eighteen /v1 operations', () => {
    expect(v1Operations).toHaveLength(18);
  });

  it.each(v1Operations)('$name: on success', async ({ method, path }) => {
    const { headers, payload } = successfulRequest(path);
    const response = await call(method, path, { ...AUTH, ...headers }, payload);
    expect(response.status, response.text).toBe(200);
    expect(response.headers['cache-control']).toBe('no-store');
  });

  it.each(v1Operations)('$name: without credentials (401)', async ({ method, path }) => {
    const { headers, payload } = successfulRequest(path);
    const response = await call(method, path, headers, payload);
    expect(response.status).toBe(401);
    expect(response.headers['cache-control']).toBe('no-store');
  });

  it.each(v1Operations.filter(({ method }) => method === 'POST'))('$name: with an unsupported body (415)', async ({ path }) => {
    const response = await call('POST', path, { ...AUTH, 'content-type': 'text/csv' }, 'a,b');
    expect(response.status).toBe(415);
    expect(response.headers['cache-control']).toBe('no-store');
  });

  it('on an unknown /v1 path (404) and a wrong method (405)', async () => {
    const unknown = await call('GET', '/v1/nothing-here', AUTH);
    expect(unknown.status).toBe(404);
    expect(unknown.headers['cache-control']).toBe('no-store');
    const wrongMethod = await call('GET', '/v1/encrypt', AUTH);
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers['cache-control']).toBe('no-store');
  });

  it('not on the operational routes, which carry nothing secret', async () => {
    const health = await call('GET', '/healthz');
    expect(health.headers['cache-control']).toBeUndefined();
  });
});
