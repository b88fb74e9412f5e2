/**
 * `envelope rewrap`: a message (v1, both forms) and a stream (v2) move to another KMS key
 * through /v1/rewrap; the payload is untouched (a stream's segments byte for byte) and opens
 * under the new key, client-side and server-side.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseStreamHeader } from '../../src/format/stream-format.js';
import { LocalKeyProvider } from '../../src/kms/local.js';
import { envelope, listeningApp, type ListeningApp } from './helpers.js';

describe('envelope rewrap', () => {
  let app: ListeningApp;
  let otherArn: string;
  beforeAll(async () => {
    app = await listeningApp();
    const provider = app.provider as LocalKeyProvider;
    const key = await provider.createKey();
    await provider.createAlias('alias/other', key.keyId);
    otherArn = key.keyArn;
  });
  afterAll(async () => app?.close());

  it('a stream: new key block, the same segments, opens both ways', async () => {
    const plaintext = Buffer.alloc(100_000, 9);
    const sealed = await envelope(['encrypt', '--client-side', '--context', 'tenant=acme'], { app, stdin: plaintext });
    expect(sealed.status).toBe(0);
    const moved = await envelope(['rewrap', '--key-id', 'alias/other'], { app, stdin: sealed.stdout });
    expect(moved.status, moved.stderr).toBe(0);
    const before = parseStreamHeader(sealed.stdout);
    const after = parseStreamHeader(moved.stdout);
    expect(after.keyArn).toBe(otherArn);
    expect(after.authenticatedHeader.equals(before.authenticatedHeader)).toBe(true);
    expect(moved.stdout.subarray(after.length).equals(sealed.stdout.subarray(before.length))).toBe(true);
    for (const flags of [[], ['--server-side']]) {
      const opened = await envelope(['decrypt', ...flags], { app, stdin: moved.stdout });
      expect(opened.status, opened.stderr).toBe(0);
      expect(opened.stdout.equals(plaintext)).toBe(true);
    }
  }, 120_000);

  it('a message in its text form stays text, and opens under the new key', async () => {
    // A v1 message from the JSON API, as an ops person would have it in a file.
    const response = await fetch(`${app.url}/v1/encrypt`, {
      method: 'POST',
      headers: { authorization: 'Bearer dev-token', 'content-type': 'application/json' },
      body: JSON.stringify({ plaintext: Buffer.from('small').toString('base64'), context: { tenant: 'acme' } }),
    });
    const { ciphertext } = (await response.json()) as { ciphertext: string };
    const moved = await envelope(['rewrap', '--key-id', 'alias/other'], { app, stdin: Buffer.from(`${ciphertext}\n`) });
    expect(moved.status, moved.stderr).toBe(0);
    expect(moved.stdout.toString()).toMatch(/^ev1:[A-Za-z0-9_-]+\n$/);
    const header = await envelope(['header', '--json'], { stdin: moved.stdout });
    expect(JSON.parse(header.stdout.toString())).toMatchObject({ formatVersion: 1, form: 'text', keyId: otherArn });
    const opened = await envelope(['decrypt'], { app, stdin: moved.stdout });
    expect(opened.stdout.toString()).toBe('small');
  }, 120_000);
});
