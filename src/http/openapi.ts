/**
 * The OpenAPI document (generated from the route schemas by @fastify/swagger), served at
 * /openapi.json, and Swagger UI at /docs with a bearer "Authorize" button. openapi.yaml at
 * the repository root is this same document (`npm run openapi`), checked by a drift test.
 */
import type { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Problem } from './schemas.js';
import { SERVICE_VERSION } from '../version.js';

export async function registerOpenApi(app: FastifyInstance): Promise<void> {
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
          'Binary values are standard base64. Errors are RFC 9457 problem details.',
      },
      servers: [],
      tags: [
        { name: 'envelope', description: 'Encrypt, decrypt, rewrap and data keys' },
        { name: 'keys', description: 'What the caller may use' },
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
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
    },
  });
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { persistAuthorization: false, tryItOutEnabled: true, displayRequestDuration: true },
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
