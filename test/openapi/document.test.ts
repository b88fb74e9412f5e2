/**
 * The OpenAPI document against the running service: the spec served at /openapi.json and to
 * Swagger UI is the committed openapi.yaml, every operation is described the way the lint and
 * the UI rely on, what it says about errors is what the service sends, and every request example
 * it offers (the bodies Swagger UI pre-fills) is accepted by the service's validation.
 */
import { readFileSync } from 'node:fs';
import request from 'supertest';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPENAPI_PATH } from '../../scripts/generate-openapi.js';
import { EXAMPLE_CIPHERTEXT, EXAMPLE_CIPHERTEXT_BOUND, EXAMPLE_KEY_ARN, EXAMPLE_STREAM_CIPHERTEXT, EXAMPLE_WRAPPED_KEY } from '../../src/http/schemas/schemas.js';
import { AUTH, buildTestApp, type TestApp } from '../helpers/app.js';
import { skipWithoutLocalKms } from '../helpers/local-kms.js';

interface MediaType {
  schema?: { $ref?: string };
  example?: unknown;
  examples?: Record<string, { summary?: string; value: unknown }>;
}
interface Response {
  description: string;
  headers?: Record<string, unknown>;
  content?: Record<string, MediaType>;
}
interface Operation {
  operationId?: string;
  summary?: string;
  description?: string;
  tags?: string[];
  security?: Record<string, string[]>[];
  requestBody?: { content: Record<string, MediaType> };
  responses: Record<string, Response>;
}
interface Document {
  servers: { url: string }[];
  tags: { name: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
}

const committed = parse(readFileSync(OPENAPI_PATH, 'utf8')) as Document;
const operations = Object.entries(committed.paths).flatMap(([path, item]) =>
  Object.entries(item).map(([method, operation]) => ({ path, method, operation, name: `${method.toUpperCase()} ${path}` })),
);
const v1 = operations.filter(({ path }) => path.startsWith('/v1/'));
const PROBLEM_REF = '#/components/schemas/Problem';

let service: TestApp;
beforeAll(async () => {
  service = await buildTestApp();
});
afterAll(async () => {
  await service?.close();
});

describe('the served document', () => {
  it('is openapi.yaml with this instance\'s own example ciphertexts and key, at /openapi.json and /docs/json (what Swagger UI loads)', async () => {
    // The UI page first: that is what makes the examples for /docs/json.
    expect((await request(service.app.server).get('/docs/')).status).toBe(200);
    const served = [];
    for (const url of ['/openapi.json', '/docs/json']) {
      const response = await request(service.app.server).get(url);
      expect(response.status, url).toBe(200);
      served.push(response.body);
    }
    expect(served[1]).toEqual(served[0]);
    // Everything is openapi.yaml's but the example values, each consistently replaced.
    const replaced = new Map<string, string>();
    collectReplacements(committed, served[0], '', replaced);
    expect([...replaced.keys()].sort()).toEqual([EXAMPLE_CIPHERTEXT, EXAMPLE_CIPHERTEXT_BOUND, EXAMPLE_KEY_ARN, EXAMPLE_STREAM_CIPHERTEXT, EXAMPLE_WRAPPED_KEY].sort());
    expect(replaced.get(EXAMPLE_KEY_ARN)).toMatch(/^arn:aws:kms:local:/);
    expect(replaced.get(EXAMPLE_CIPHERTEXT)).toMatch(/^ev1:/);
  });

  it('has one relative server, so "Try it out" calls whichever host served the page', () => {
    expect(committed.servers.map((server) => server.url)).toEqual(['/']);
  });

  it('lists exactly the service routes', () => {
    expect(operations.map(({ name }) => name).sort()).toEqual(
      [
        'GET /healthz',
        'GET /metrics',
        'GET /readyz',
        'GET /v1/keys',
        'GET /v1/admin/cache',
        'GET /v1/admin/kms',
        'GET /v1/admin/policy',
        'POST /v1/admin/cache/evict',
        'POST /v1/admin/policy/reload',
        'POST /v1/datakey',
        'POST /v1/decrypt',
        'POST /v1/decrypt/batch',
        'POST /v1/decrypt/binary',
        'POST /v1/decrypt/stream',
        'POST /v1/encrypt',
        'POST /v1/encrypt/batch',
        'POST /v1/encrypt/binary',
        'POST /v1/encrypt/stream',
        'POST /v1/rewrap',
        'POST /v1/unwrap',
      ].sort(),
    );
  });
});

describe.skipIf(skipWithoutLocalKms())('the served document on an instance with AWS KMS', () => {
  it('is exactly openapi.yaml (no examples are made there)', async () => {
    const aws = await buildTestApp({ provider: 'aws' });
    try {
      for (const url of ['/docs/', '/openapi.json', '/docs/json']) {
        const response = await request(aws.app.server).get(url);
        expect(response.status, url).toBe(200);
        if (url !== '/docs/') expect(response.body, url).toEqual(committed);
      }
    } finally {
      await aws.close();
    }
  });
});

describe('every operation', () => {
  const knownTags = new Set(committed.tags.map((tag) => tag.name));

  it.each(operations)('$name has operationId, summary, description and a declared tag', ({ operation }) => {
    expect(operation.operationId).toMatch(/^[a-z][A-Za-z]+$/);
    expect(operation.summary).toBeTruthy();
    expect(operation.description).toBeTruthy();
    expect(operation.tags?.length).toBeGreaterThan(0);
    for (const tag of operation.tags ?? []) expect(knownTags.has(tag), tag).toBe(true);
  });

  it('has a unique operationId', () => {
    const ids = operations.map(({ operation }) => operation.operationId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it.each(v1)('$name requires bearerAuth', ({ operation }) => {
    expect(operation.security).toEqual([{ bearerAuth: [] }]);
  });

  it.each(operations.filter(({ path }) => !path.startsWith('/v1/')))('$name is explicitly public', ({ operation }) => {
    expect(operation.security).toEqual([]);
  });

  it.each(v1)('$name documents its errors as application/problem+json with the shared Problem schema', ({ operation }) => {
    const errors = Object.entries(operation.responses).filter(([status]) => Number(status) >= 400);
    expect(errors.length).toBeGreaterThan(0);
    for (const [status, response] of errors) {
      expect(Object.keys(response.content ?? {}), status).toEqual(['application/problem+json']);
      const media = response.content!['application/problem+json']!;
      expect(media.schema, status).toEqual({ $ref: PROBLEM_REF });
      expect(media.example, status).toMatchObject({ status: Number(status) });
    }
    expect(operation.responses['429']?.headers).toHaveProperty('retry-after');
    expect(operation.responses['503']?.headers).toHaveProperty('retry-after');
    expect(operation.responses['401']?.headers).toHaveProperty('www-authenticate');
  });

  it('has Problem as the one shared component schema', () => {
    expect(Object.keys(committed.components.schemas)).toEqual(['Problem']);
    expect(Object.keys(committed.components.securitySchemes)).toEqual(['bearerAuth']);
  });
});

describe('the binary and stream routes, as generators and Swagger UI read them', () => {
  const binary = operations.filter(({ path }) => path.endsWith('/binary') || path.endsWith('/stream'));
  const OCTET = 'application/octet-stream';

  it.each(binary)('$name: octet-stream bodies are OpenAPI 3.1 raw bytes (contentMediaType), not 3.0 `format: binary`', ({ operation }) => {
    const bodies = [operation.requestBody!.content[OCTET]!.schema, operation.responses['200']!.content![OCTET]!.schema] as Record<string, unknown>[];
    for (const schema of bodies) {
      expect(schema.contentMediaType).toBe(OCTET);
      expect(schema).not.toHaveProperty('format');
      expect(schema).not.toHaveProperty('type');
    }
  });

  it.each(binary)('$name: the aad header is a plain base64 string, with nothing pre-filled', ({ operation }) => {
    const parameters = (operation as unknown as { parameters: { name: string; schema: Record<string, unknown>; example?: unknown }[] }).parameters;
    const aad = parameters.find((parameter) => parameter.name === 'x-envelope-aad')!;
    expect(aad.schema.type).toBe('string');
    expect(aad.schema.pattern).toMatch(/A-Za-z0-9\+\//);
    expect(aad.schema).not.toHaveProperty('format'); // format: byte is a file picker in Swagger UI
    expect(aad.schema).not.toHaveProperty('default');
    expect(aad.schema).not.toHaveProperty('examples');
    expect(aad).not.toHaveProperty('example');
  });
});

describe('what the document says is what the service does', () => {
  it('sends a 401 as application/problem+json with the Problem fields and WWW-Authenticate', async () => {
    const response = await request(service.app.server).post('/v1/encrypt').send({ plaintext: 'aGVsbG8=' });
    expect(response.status).toBe(401);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.headers['www-authenticate']).toBe('Bearer realm="envelope-service"');
    expect(Object.keys(response.body).sort()).toEqual(['code', 'detail', 'requestId', 'status', 'title', 'type']);
  });

  it('sends a 400 as application/problem+json, serialized with the Problem schema', async () => {
    const response = await request(service.app.server).post('/v1/encrypt').set(AUTH).send({ plaintext: 'aGVsbG8=', keyid: 'x' });
    expect(response.status).toBe(400);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.body).toMatchObject({ status: 400, code: 'InvalidRequest', title: 'Bad Request' });
  });

  it('serves /docs under a CSP that keeps the page on this origin and works over plain http', async () => {
    const response = await request(service.app.server).get('/docs/static/index.html');
    const csp = String(response.headers['content-security-policy'] ?? '');
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("script-src 'self';");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('upgrade-insecure-requests');
  });
});

describe('request examples', () => {
  const withBodies = v1.filter(({ operation }) => operation.requestBody);

  it.each(withBodies)('$name offers named examples', ({ operation }) => {
    const media = Object.values(operation.requestBody!.content);
    expect(media.length).toBeGreaterThan(0);
    for (const { examples: named = {} } of media) {
      expect(Object.keys(named).length).toBeGreaterThan(0);
      for (const example of Object.values(named)) expect(example.summary).toBeTruthy();
    }
  });

  // What Swagger UI's "Try it out" sends unedited: each named example of the document this
  // instance serves, with the header parameters' examples (as the UI pre-fills them).
  it('every example of the served document succeeds as is on a fresh dev instance', async () => {
    const served = (await request(service.app.server).get('/openapi.json')).body as Document;
    let count = 0;
    for (const [path, item] of Object.entries(served.paths).filter(([path]) => path.startsWith('/v1/'))) {
      const operation = item.post;
      if (!operation?.requestBody) continue;
      const parameters = (operation as unknown as { parameters?: { in: string; name: string; example?: string }[] }).parameters ?? [];
      const headers = Object.fromEntries(parameters.filter((p) => p.in === 'header' && p.example !== undefined).map((p) => [p.name, p.example!]));
      for (const [mediaType, media] of Object.entries(operation.requestBody.content)) {
        for (const [name, { value }] of Object.entries(media.examples ?? {})) {
          const payload = mediaType === 'application/json' ? JSON.stringify(value) : Buffer.from(value as string);
          const response = await request(service.app.server).post(path).set({ ...AUTH, ...headers, 'content-type': mediaType }).send(payload);
          expect(response.status, `${path} ${name}: ${response.text}`).toBe(200);
          count++;
        }
      }
    }
    expect(count).toBeGreaterThanOrEqual(14);
  });

  it('every example of openapi.yaml passes the service validation (elsewhere its ciphertexts are 422)', async () => {
    for (const { path, operation } of withBodies) {
      for (const [name, { value }] of Object.entries(operation.requestBody!.content['application/json']?.examples ?? {})) {
        const response = await request(service.app.server).post(path).set(AUTH).send(value as object);
        expect([200, 422], `${path} ${name}: ${response.text}`).toContain(response.status);
      }
    }
  });
});

/** Walks two JSON values of the same shape; where strings differ, records committed -> served. */
function collectReplacements(committedValue: unknown, servedValue: unknown, at: string, into: Map<string, string>): void {
  if (typeof committedValue === 'string' && typeof servedValue === 'string' && committedValue !== servedValue) {
    expect(into.get(committedValue) ?? servedValue, `${at}: one replacement per value`).toBe(servedValue);
    into.set(committedValue, servedValue);
    return;
  }
  if (committedValue !== null && typeof committedValue === 'object') {
    expect(Object.keys(servedValue as object), at).toEqual(Object.keys(committedValue));
    for (const [key, item] of Object.entries(committedValue)) collectReplacements(item, (servedValue as Record<string, unknown>)[key], `${at}/${key}`, into);
    return;
  }
  expect(servedValue, at).toEqual(committedValue);
}
