/**
 * openapi.yaml is what other teams generate their clients from, so a client generated from it
 * by a widely used generator must compile in strict mode and work against the real service:
 *
 *   1. openapi-typescript (the command a user would run) turns openapi.yaml into types, in
 *      test/client/generated/ (gitignored);
 *   2. tsc, strict, checks them together with round-trip.ts, a client written against them with
 *      openapi-fetch and no casts (raw bytes included: the binary bodies are OpenAPI 3.1
 *      `contentMediaType`, which openapi-typescript types as `unknown`, so a Uint8Array is
 *      accepted as is);
 *   3. round-trip.ts runs every operation over HTTP against the app listening on loopback.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_TOKEN, buildTestApp, type TestApp } from '../helpers/app.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const GENERATED = fileURLToPath(new URL('./generated/', import.meta.url));
const ROUND_TRIP = fileURLToPath(new URL('./round-trip.ts', import.meta.url));

/** round-trip.ts's export, declared here so the project's own type-check never needs the generated types. */
type RoundTrip = (baseUrl: string, token: string, plaintext: Uint8Array) => Promise<Record<string, any>>;

describe('a client generated from openapi.yaml (openapi-typescript + openapi-fetch)', () => {
  let service: TestApp;
  let base: string;

  beforeAll(async () => {
    rmSync(GENERATED, { recursive: true, force: true });
    service = await buildTestApp();
    await service.app.listen({ port: 0, host: '127.0.0.1' });
    const address = service.app.server.address();
    if (!address || typeof address === 'string') throw new Error('service has no TCP address');
    base = `http://127.0.0.1:${address.port}`;
  });
  afterAll(async () => {
    await service?.close();
  });

  it('is generated, type-checks in strict mode, and round-trips every operation', async () => {
    await run(process.execPath, ['node_modules/openapi-typescript/bin/cli.js', 'openapi.yaml', '-o', 'test/client/generated/api.ts'], { cwd: ROOT });

    const typecheck = await run(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'test/client/tsconfig.json'], { cwd: ROOT }).catch(
      (error: { stdout?: string; code?: number }) => ({ stdout: error.stdout ?? '', failed: error.code ?? 1 }),
    );
    expect(typecheck, `tsc --strict on the generated client:\n${typecheck.stdout}`).not.toHaveProperty('failed');

    const { roundTrip } = (await import(ROUND_TRIP)) as { roundTrip: RoundTrip };
    const plaintext = randomBytes(4096);
    const result = await roundTrip(base, DEV_TOKEN, plaintext);

    expect(result.encrypted.ciphertext).toMatch(/^ev1:/);
    expect(result.decrypted).toMatchObject({ plaintext: plaintext.toString('base64'), context: { tenant: 'acme', purpose: 'billing' } });
    expect(result.encryptBatch).toHaveLength(2);
    expect(result.decryptBatch.map((item: { plaintext?: string }) => item.plaintext)).toEqual([plaintext.toString('base64'), plaintext.toString('base64')]);
    expect(result.rewrapped.ciphertext).not.toBe(result.encrypted.ciphertext);
    expect(result.rewrappedPlaintext).toBe(plaintext.toString('base64'));
    expect(Buffer.from(result.dataKey.plaintextKey, 'base64')).toHaveLength(32);
    // The binary routes: the bytes went out raw (not JSON) and came back raw.
    expect(result.binaryEnvelope[0]).toBe(1); // the envelope's version byte
    expect(result.binaryKeyId).toBe(result.encrypted.keyId);
    expect(Buffer.compare(Buffer.from(result.binaryPlaintext), plaintext)).toBe(0);
    expect(result.binaryContext).toBe('tenant=acme');
    // The stream routes: a stream ciphertext (format version 2) and the bytes back.
    expect([result.streamCiphertext[0], result.streamCiphertext[1]]).toEqual([2, 2]);
    expect(Buffer.compare(Buffer.from(result.streamPlaintext), plaintext)).toBe(0);
    expect(result.keys[0]).toMatchObject({ aliases: ['alias/default'], grants: [{ rule: 'dev-all' }] });
    expect([result.health, result.readiness]).toEqual(['ok', 'ready']);
    expect(result.metrics).toContain('datakey_cache');
    expect(result.problem).toEqual({ status: 404, code: 'KeyNotFound' });
  }, 60_000);
});
