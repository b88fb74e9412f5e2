/**
 * What a script relies on when something is wrong: a truncated, tampered or wrongly keyed
 * ciphertext, decrypted client-side (the default for a stream) or server-side, to a file or to
 * standard output: a non-zero exit (6), no output file and no temporary file left, and one line
 * naming the reason (bad segment N, truncated, wrong key). Without the grant a mode needs, the
 * service's 403 and the grant's name. Every data key handed out or unwrapped is in the audit.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseStreamHeader, encodeStreamHeader } from '../../src/format/stream-format.js';
import { envelope, listeningApp, scratchDir, type ListeningApp } from './helpers.js';

const SEGMENT = 64 * 1024;
const TAG = 16;

function plaintextOf(size: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 7 + 3) & 0xff;
  return bytes;
}

describe('broken ciphertexts', () => {
  let app: ListeningApp;
  let dir: string;
  /** Three segments (two full, one of 100 bytes), made by each mode. */
  const sealed: Record<'client' | 'server', Buffer> = { client: Buffer.alloc(0), server: Buffer.alloc(0) };

  beforeAll(async () => {
    app = await listeningApp();
    dir = scratchDir();
    const plaintext = plaintextOf(2 * SEGMENT + 100);
    for (const mode of ['client', 'server'] as const) {
      const ran = await envelope(['encrypt', ...(mode === 'client' ? ['--client-side'] : []), '--context', 'tenant=acme'], { app, stdin: plaintext });
      expect(ran.status).toBe(0);
      sealed[mode] = ran.stdout;
    }
  }, 120_000);
  afterAll(async () => app?.close());

  /** The byte offset of segment `index`'s first ciphertext byte. */
  const segmentAt = (stream: Buffer, index: number) => parseStreamHeader(stream).length + index * (SEGMENT + TAG);

  const broken = {
    'a flipped byte in segment 1': (stream: Buffer) => {
      const copy = Buffer.from(stream);
      copy[segmentAt(copy, 1) + 10]! ^= 1;
      return { bytes: copy, reason: /bad segment 1|cut the stream short/ };
    },
    'the last segment dropped': (stream: Buffer) => ({ bytes: stream.subarray(0, segmentAt(stream, 2)), reason: /truncated|cut the stream short/ }),
    'cut inside the last segment': (stream: Buffer) => ({ bytes: stream.subarray(0, stream.length - 50), reason: /truncated|cut the stream short/ }),
    'a flipped byte in segment 0': (stream: Buffer) => {
      const copy = Buffer.from(stream);
      copy[segmentAt(copy, 0)]! ^= 1;
      return { bytes: copy, reason: /bad segment 0|segment 0/ };
    },
  };

  for (const mode of ['client', 'server'] as const) {
    for (const decryptFlags of [[], ['--server-side']]) {
      for (const [name, breakIt] of Object.entries(broken)) {
        it(`sealed ${mode}-side, decrypted ${decryptFlags.length ? 'server-side' : 'client-side'}: ${name} -> exit 6, no file, the reason`, async () => {
          const { bytes, reason } = breakIt(sealed[mode]);
          const into = scratchDir();
          const input = join(into, 'broken.ev2');
          writeFileSync(input, bytes);
          const output = join(into, 'plain');
          const ran = await envelope(['decrypt', ...decryptFlags, '-o', output, input], { app });
          expect(ran.status).toBe(6);
          expect(ran.stderr).toMatch(reason);
          expect(readdirSync(into)).toEqual(['broken.ev2']); // neither the output nor its temporary file
        }, 60_000);
      }
    }
  }

  it('to standard output: the verified segments, then exit 6 (a pipeline must check the status)', async () => {
    const { bytes } = broken['a flipped byte in segment 1'](sealed.client);
    const ran = await envelope(['decrypt'], { app, stdin: bytes });
    expect(ran.status).toBe(6);
    expect(ran.stderr).toContain('bad segment 1');
    expect(ran.stdout.equals(plaintextOf(SEGMENT))).toBe(true); // segment 0 only: verified
  }, 60_000);

  it('wrong key: another stream\'s key block fails the key commitment (client-side) or the service\'s check (server-side)', async () => {
    const other = await envelope(['encrypt', '--client-side', '--context', 'tenant=acme'], { app, stdin: Buffer.from('other') });
    const a = parseStreamHeader(sealed.client);
    const b = parseStreamHeader(other.stdout);
    const { header } = encodeStreamHeader({ keyArn: b.keyArn, wrappedKey: b.wrappedKey }, a.context, a.messageId, a.commitment, a.segmentSize);
    const swapped = Buffer.concat([header, sealed.client.subarray(a.length)]);
    const into = scratchDir();
    writeFileSync(join(into, 'swapped.ev2'), swapped);
    const local = await envelope(['decrypt', '-o', join(into, 'out'), join(into, 'swapped.ev2')], { app });
    expect(local.status).toBe(6);
    expect(local.stderr).toContain('wrong key');
    const remote = await envelope(['decrypt', '--server-side', '-o', join(into, 'out'), join(into, 'swapped.ev2')], { app });
    expect(remote.status).toBe(6);
    expect(remote.stderr).toMatch(/422 KeyCommitmentMismatch|commit/);
    expect(readdirSync(into)).toEqual(['swapped.ev2']);
  }, 60_000);

  it('a context other than the stored one: refused before any byte, both ways', async () => {
    const into = scratchDir();
    writeFileSync(join(into, 'c.ev2'), sealed.server);
    for (const flags of [[], ['--server-side']]) {
      const ran = await envelope(['decrypt', ...flags, '--context', 'tenant=globex', '-o', join(into, 'out'), join(into, 'c.ev2')], { app });
      expect(ran.status).toBe(6);
      expect(ran.stderr).toContain('ContextMismatch');
    }
    expect(readdirSync(into)).toEqual(['c.ev2']);
  }, 60_000);

  it('header reads both, truncated or not, and prints no secret', async () => {
    const ran = await envelope(['header'], { stdin: sealed.client });
    expect(ran.status).toBe(0);
    const text = ran.stdout.toString();
    expect(text).toContain('format:           2 (stream, binary)');
    expect(text).toContain('context:          tenant=acme');
    expect(text).toContain('segment size:     65536');
    expect(text).toContain('segments:         3');
    expect(text).toContain(`plaintext bytes:  ${2 * SEGMENT + 100}`);
    const wrapped = parseStreamHeader(sealed.client).wrappedKey;
    expect(text).not.toContain(wrapped.toString('base64'));
    expect(text).not.toContain(wrapped.toString('hex'));
    const cut = await envelope(['header'], { stdin: broken['cut inside the last segment'](sealed.client).bytes.subarray(0, segmentAt(sealed.client, 2) + 5) });
    expect(cut.stdout.toString()).toContain('truncated:        yes');
  }, 60_000);
});

describe('grants and the audit trail', () => {
  let app: ListeningApp;
  const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');
  const TOKENS = { writer: 'client-test-writer-token', reader: 'client-test-reader-token' };

  beforeAll(async () => {
    const policyDir = scratchDir();
    const policy = join(policyDir, 'policy.yaml');
    writeFileSync(
      policy,
      [
        'version: 1',
        'authentication:',
        '  apiKeys:',
        `    - { name: writer, sha256: "${sha256(TOKENS.writer)}" }`,
        `    - { name: reader, sha256: "${sha256(TOKENS.reader)}" }`,
        'rules:',
        '  - id: writer',
        '    principals: [writer]',
        '    operations: [encrypt, decrypt, datakey]',
        '    keys: ["*"]',
        '    context: { equals: { tenant: acme } }',
        '  - id: reader',
        '    principals: [reader]',
        '    operations: [decrypt, datakey, "datakey:plaintext"]',
        '    keys: ["*"]',
        '    context: { equals: { tenant: acme } }',
        '',
      ].join('\n'),
    );
    app = await listeningApp({ policyFile: policy });
  }, 60_000);
  afterAll(async () => app?.close());

  const as = (who: keyof typeof TOKENS) => ({ app: { url: app.url }, env: { ENVELOPE_URL: app.url, ENVELOPE_TOKEN: TOKENS[who] } });

  it('client-side encrypt without datakey:plaintext: exit 4, the service\'s 403 and the grant named; server-side works', async () => {
    const denied = await envelope(['encrypt', '--client-side', '--context', 'tenant=acme'], { ...as('writer'), stdin: Buffer.from('x') });
    expect(denied.status).toBe(4);
    expect(denied.stderr).toContain('403 AccessDenied');
    expect(denied.stderr).toContain('"datakey:plaintext"');
    const allowed = await envelope(['encrypt', '--context', 'tenant=acme'], { ...as('writer'), stdin: Buffer.from('x') });
    expect(allowed.status).toBe(0);
  }, 60_000);

  it('client-side decrypt without datakey:unwrap: exit 4 naming it; --server-side with decrypt works', async () => {
    const sealed = await envelope(['encrypt', '--client-side', '--context', 'tenant=acme'], { ...as('reader'), stdin: Buffer.from('secret') });
    expect(sealed.status).toBe(0);
    const denied = await envelope(['decrypt'], { ...as('reader'), stdin: sealed.stdout });
    expect(denied.status).toBe(4);
    expect(denied.stderr).toContain('"datakey:unwrap"');
    const served = await envelope(['decrypt', '--server-side'], { ...as('reader'), stdin: sealed.stdout });
    expect(served.status).toBe(0);
    expect(served.stdout.toString()).toBe('secret');
  }, 60_000);
});

describe('the audit trail of client-side mode', () => {
  let app: ListeningApp;
  beforeAll(async () => {
    app = await listeningApp();
  });
  afterAll(async () => app?.close());

  it('the data key handed out (GenerateDataKey, includePlaintext) and unwrapped (UnwrapDataKey) carry the id `header` prints', async () => {
    const sealed = await envelope(['encrypt', '--client-side', '--context', 'tenant=acme'], { app, stdin: Buffer.from('audited') });
    const header = await envelope(['header', '--json'], { stdin: sealed.stdout });
    const { dataKeyId } = JSON.parse(header.stdout.toString()) as { dataKeyId: string };
    const opened = await envelope(['decrypt'], { app, stdin: sealed.stdout });
    expect(opened.stdout.toString()).toBe('audited');
    const events = app.auditEvents().filter((event) => (event.additionalEventData as { dataKeyId?: string })?.dataKeyId === dataKeyId);
    expect(events.map((event) => [event.eventName, event.httpStatus])).toEqual([
      ['GenerateDataKey', 200],
      ['UnwrapDataKey', 200],
    ]);
    expect((events[0]!.requestParameters as { includePlaintext: boolean }).includePlaintext).toBe(true);
    expect(events[0]!.userAgent ?? JSON.stringify(events[0])).toContain('envelope-cli');
  }, 60_000);
});
