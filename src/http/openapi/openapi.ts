/**
 * The OpenAPI document (generated from the route schemas by @fastify/swagger), served at
 * /openapi.json, and Swagger UI at /docs with a bearer "Authorize" button. openapi.yaml at
 * the repository root is this same document (`npm run openapi`), checked by a drift test and
 * linted with Redocly (`npm run lint:openapi`, rules in redocly.yaml).
 *
 * The one server is relative (`/`): Swagger UI's "Try it out" then calls whichever host served
 * the page, so the same document works behind any hostname, port or proxy, and the UI's
 * requests stay same-origin (allowed by the CSP below without listing hosts).
 */
import type { FastifyInstance, FastifyRequest, FastifySchema } from 'fastify';
import swagger, { type SwaggerTransform } from '@fastify/swagger';
import swaggerUi, { type FastifySwaggerUiConfigOptions } from '@fastify/swagger-ui';
import type { LiveExamples } from './live-examples.js';
import { Problem, type NamedExample } from '../schemas/schemas.js';
import { SERVICE_VERSION } from '../../version.js';

declare module 'fastify' {
  interface FastifySchema {
    /**
     * Named request-body examples, for the OpenAPI document only. They sit beside `body`, not
     * in it, because the body schema is compiled by Ajv in strict mode, which rejects unknown
     * keywords such as `x-examples`; Fastify ignores this key.
     */
    bodyExamples?: Record<string, NamedExample>;
    /**
     * The body as the document shows it, when Fastify validates less up front (the batch routes
     * validate each item on their own, so that a bad item fails alone). Fastify ignores this key.
     */
    documentedBody?: unknown;
  }
}

/** Puts a route's `documentedBody` in place of the body schema Fastify validates. */
const useDocumentedBody: SwaggerTransform = ({ schema, url }) => {
  const { documentedBody, ...rest } = (schema ?? {}) as FastifySchema;
  if (!schema || documentedBody === undefined) return { schema, url };
  return { schema: { ...rest, body: documentedBody }, url };
};

/**
 * Moves a route's `bodyExamples` into its body schema as `x-examples`, which @fastify/swagger
 * turns into the request body's media-type `examples`. Only the document sees the copy.
 */
const moveBodyExamples: SwaggerTransform = ({ schema, url }) => {
  const { bodyExamples, ...rest } = (schema ?? {}) as FastifySchema;
  if (!schema || !bodyExamples || !rest.body) return { schema, url };
  const body = rest.body as { content?: Record<string, { schema: object }> };
  if (!body.content) return { schema: { ...rest, body: { ...body, 'x-examples': bodyExamples } }, url };
  // A body given per media type (routes/binary.ts): the examples go into each media type's schema.
  const content = Object.fromEntries(
    Object.entries(body.content).map(([type, media]) => [type, { ...media, schema: { ...media.schema, 'x-examples': bodyExamples } }]),
  );
  return { schema: { ...rest, body: { ...body, content } }, url };
};

const OCTET_STREAM = 'application/octet-stream';

/**
 * Binary request bodies (routes/binary.ts) are validated without a `type` (Ajv would reject a
 * Buffer as no string). The document says `contentMediaType: application/octet-stream`, OpenAPI
 * 3.1's way of describing raw bytes, and no `type: string, format: binary` (the 3.0 way): with
 * it, generators such as openapi-typescript type the body as a `string`, and a client cannot
 * send a Uint8Array without a cast.
 */
const typeBinaryBodies: SwaggerTransform = ({ schema, url }) => {
  const body = (schema as FastifySchema | undefined)?.body as { content?: Record<string, { schema?: Record<string, unknown> }> } | undefined;
  if (!body?.content) return { schema, url };
  const content = Object.fromEntries(
    Object.entries(body.content).map(([type, media]) => [
      type,
      type === OCTET_STREAM ? { ...media, schema: { contentMediaType: OCTET_STREAM, ...media.schema } } : media,
    ]),
  );
  return { schema: { ...(schema as object), body: { ...body, content } }, url };
};

const transformRouteSchema: SwaggerTransform = (route) =>
  typeBinaryBodies(moveBodyExamples(useDocumentedBody(route) as typeof route) as typeof route);

/**
 * Swagger UI plugins. @fastify/swagger-ui writes uiConfig into the page's initializer script
 * (a 'self' script, so the CSP allows it) with functions as their source text: these must be
 * self-contained, and written with method syntax (a bundler's name-keeping helpers wrap arrow
 * functions in calls that do not exist in the browser).
 *
 * `plugins` replaces the initializer's own list, whose one entry, DownloadUrl (it loads the
 * document from /docs/json), comes first again through the page's SwaggerUIBundle global.
 */
type SwaggerUiPlugin = NonNullable<FastifySwaggerUiConfigOptions['plugins']>[number];
declare const SwaggerUIBundle: { plugins: { DownloadUrl: SwaggerUiPlugin } };
function downloadUrl(system: unknown): ReturnType<SwaggerUiPlugin> {
  return SwaggerUIBundle.plugins.DownloadUrl(system);
}
/**
 * No file pickers: Swagger UI turns every application/octet-stream body into one (its
 * `fileUploadMediaTypes` option can only add types, since its defaults are merged in, not
 * replaced), and a picker cannot hold an example: Execute with no file chosen sends nothing and
 * says nothing. Without it, the binary routes' body is a text box holding the example, which
 * Execute sends as is. This API has no other upload; files go through curl (`--data-binary @file`).
 */
function noFilePickers(): ReturnType<SwaggerUiPlugin> {
  return {
    fn: {
      isFileUploadIntended() {
        return false;
      },
      isFileUploadIntendedOAS30() {
        return false;
      },
    },
  };
}

const UI_CONFIG: FastifySwaggerUiConfigOptions = {
  persistAuthorization: false,
  tryItOutEnabled: true,
  displayRequestDuration: true,
  plugins: [downloadUrl, noFilePickers],
};

const DOCS_CSP = {
  'default-src': ["'self'"],
  'base-uri': ["'self'"],
  'connect-src': ["'self'"],
  'font-src': ["'self'", 'data:'],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
  'img-src': ["'self'", 'data:'],
  'object-src': ["'none'"],
  'script-src': ["'self'"],
  'script-src-attr': ["'none'"],
  // The one inline <style> Swagger UI renders: the fill colours of its small SVG logo in the top
  // bar (which @fastify/swagger-ui then swaps for its own). Allowed by hash, not 'unsafe-inline';
  // test/e2e/swagger-ui.test.ts fails on any CSP violation, so a changed bundle shows up there.
  'style-src': ["'self'", "'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='"],
};

/**
 * `live`: an instance's own examples (local provider only, see live-examples.ts) for the
 * document it serves; without it the served document is exactly openapi.yaml.
 */
export async function registerOpenApi(app: FastifyInstance, live?: LiveExamples): Promise<void> {
  app.addSchema(Problem);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Envelope encryption service',
        version: SERVICE_VERSION,
        description:
          'Encrypts and decrypts payloads with AES-256-GCM under KMS data keys (envelope encryption). ' +
          'Every /v1 call needs a bearer token, is authorized by the policy and is written to the audit log. ' +
          'Binary values are standard base64. Errors are RFC 9457 problem details (`application/problem+json`) ' +
          'with a stable `code` and the `requestId` that also names the audit event.\n\n' +
          'In dev mode (no POLICY_FILE) the bearer token is DEV_TOKEN (`dev-token` unless set): use **Authorize** ' +
          'above, then **Try it out** on any operation.',
        // package.json: UNLICENSED, i.e. proprietary. No SPDX identifier or license URL exists for
        // it (see info-license-strict in redocly.yaml).
        license: { name: 'Proprietary (UNLICENSED): internal use only' },
      },
      servers: [{ url: '/', description: 'The host that serves this document' }],
      tags: [
        { name: 'envelope', description: 'Encrypt, decrypt, rewrap and data keys' },
        { name: 'keys', description: 'What the caller may use' },
        { name: 'admin', description: 'Incident actions and live state of the replica that answers (admin:read, admin:cache, admin:policy)' },
        { name: 'operations', description: 'Health, readiness and metrics' },
      ],
      components: {
        securitySchemes: {
          bearerAuth: {
            type: 'http',
            scheme: 'bearer',
            description: 'An API key from the policy file, a JWT from the configured issuer, or DEV_TOKEN in dev mode.',
          },
        },
      },
    },
    transform: transformRouteSchema,
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
    },
  });
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: UI_CONFIG,
    // Swagger UI loads only its own files (no inline scripts), so the page can be locked to this
    // origin. connect-src 'self' is what "Try it out" needs with the relative server URL; nothing
    // goes to validator.swagger.io (validatorUrl stays null). Unlike the plugin's
    // `staticCSP: true`, no upgrade-insecure-requests: that would turn the UI's calls to a
    // plain-http dev or loopback instance into https requests that fail.
    staticCSP: DOCS_CSP,
    ...(live
      ? {
          // Any UI request (the page first) makes the examples, so they are there for /docs/json.
          uiHooks: { onRequest: async (request: FastifyRequest) => live.ready(request.log) },
          transformSpecification: (document: Readonly<Record<string, unknown>>) => live.apply(document),
          transformSpecificationClone: false,
        }
      : {}),
  });
  app.get('/openapi.json', { schema: { hide: true } }, async (request) => {
    if (!live) return app.swagger();
    await live.ready(request.log);
    return live.apply(app.swagger());
  });
}
