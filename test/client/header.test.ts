/**
 * `envelope header` reads every form the service writes: v1 binary and `ev1:` text, v2 binary
 * and `ev2:` text; the same key, context and data key id the audit log records, sizes right,
 * and never the wrapped key or anything secret.
 */
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeCiphertext, type EnvelopeClient } from '../../src/client/index.js';
import { toStreamText } from '../../src/format/stream-text-form.js';
import { clientFor, envelope, listeningApp, type ListeningApp } from './helpers.js';

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('envelope header', () => {
  let app: ListeningApp;
  let client: EnvelopeClient;
  beforeAll(async () => {
    app = await listeningApp();
    client = clientFor(app);
  });
  afterAll(async () => app?.close());

  it('v1 text and binary, v2 binary and text: format, form, key, context, sizes', async () => {
    const context = { tenant: 'acme' };
    const text = (await client.encrypt({ plaintext: Buffer.from('twelve bytes').toString('base64'), context })).ciphertext;
    const binary = (await client.encryptBinary(Buffer.from('twelve bytes'), { context })).bytes;
    const stream = await collect(client.encryptStream(Readable.from([Buffer.alloc(70_000, 1)]), { context }));
    const forms: [Buffer, Partial<Awaited<ReturnType<typeof describeCiphertext>>>][] = [
      [Buffer.from(`${text}\n`), { formatVersion: 1, form: 'text', plaintextBytes: 12 }],
      [binary, { formatVersion: 1, form: 'binary', plaintextBytes: 12 }],
      [stream, { formatVersion: 2, form: 'binary', plaintextBytes: 70_000, segmentSize: 65536, segments: 2, truncated: false }],
      [Buffer.from(toStreamText(stream)), { formatVersion: 2, form: 'text', plaintextBytes: 70_000, segmentSize: 65536, segments: 2 }],
    ];
    for (const [bytes, expected] of forms) {
      const described = await describeCiphertext(Readable.from([bytes]));
      expect(described).toMatchObject({ ...expected, context, keyId: expect.stringMatching(/^arn:/), ciphertextBytes: bytes.length });
    }
  });

  it('the data key id is the audit event\'s, and the command prints no secret', async () => {
    const stream = await collect(client.encryptStream(Readable.from([Buffer.from('x')]), { context: { tenant: 'acme' } }));
    const event = app.auditEvents().filter((e) => e.eventName === 'EncryptStream').at(-1)!;
    const ran = await envelope(['header', '--json'], { stdin: Buffer.from(toStreamText(stream)) });
    expect(ran.status).toBe(0);
    const printed = JSON.parse(ran.stdout.toString()) as Record<string, unknown>;
    expect(printed.dataKeyId).toBe((event.additionalEventData as { dataKeyId: string }).dataKeyId);
    expect(Object.keys(printed).sort()).toEqual(
      ['ciphertextBytes', 'context', 'dataKeyId', 'form', 'formatVersion', 'input', 'keyId', 'plaintextBytes', 'segmentSize', 'segments', 'truncated', 'wrappedKeyBytes'].sort(),
    );
  }, 60_000);

  it('not a ciphertext: exit 6 with the reason', async () => {
    const ran = await envelope(['header'], { stdin: Buffer.from('hello, not a ciphertext') });
    expect(ran.status).toBe(6);
    expect(ran.stderr).toMatch(/UnsupportedFormat|MalformedCiphertext/);
  }, 60_000);
});
