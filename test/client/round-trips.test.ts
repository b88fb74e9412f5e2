/**
 * One format: every producer's ciphertext opens with every consumer, at 0 bytes and one
 * segment (64 KiB) - 1, exactly, + 1. Producers: the command client-side and server-side, the
 * service's stream route called directly, the library server-side (encryptStream) and
 * client-side (sealStream). Consumers: the command (reads the mode from the input: unwrap and
 * open here) and with --server-side, the service's route, the library's decryptStream and
 * openStream. The command runs as a process, once per mode for all files (many files at once).
 */
import { readFileSync, renameSync, writeFileSync, cpSync, mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStream, sealStream, type EnvelopeClient } from '../../src/client/index.js';
import { DEV_TOKEN } from '../helpers/app.js';
import { clientFor, envelope, listeningApp, scratchDir, type ListeningApp } from './helpers.js';

const SEGMENT = 64 * 1024;
const SIZES = [0, SEGMENT - 1, SEGMENT, SEGMENT + 1];
const CONTEXT = { tenant: 'acme', purpose: 'round-trip' };
const CONTEXT_ARGS = ['--context', 'tenant=acme', '--context', 'purpose=round-trip'];
const CONTEXT_HEADER = 'tenant=acme&purpose=round-trip';

/** Deterministic bytes, different at every offset within a segment. */
function plaintextOf(size: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + (i >> 8)) & 0xff;
  return bytes;
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The service's stream route, called as curl would (fetch, no client library). */
async function route(app: ListeningApp, path: string, body: Buffer, headers: Record<string, string> = {}): Promise<Buffer> {
  const response = await fetch(`${app.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${DEV_TOKEN}`, 'content-type': 'application/octet-stream', ...headers },
    body,
  });
  const bytes = Buffer.from(await response.arrayBuffer());
  if (response.status !== 200) throw new Error(`${path}: ${response.status} ${bytes.toString()}`);
  return bytes;
}

describe('round trips across the command (both modes), the service routes and the library', () => {
  let app: ListeningApp;
  let client: EnvelopeClient;
  let dir: string;
  /** producer -> size -> ciphertext file. */
  const made = new Map<string, Map<number, string>>();

  beforeAll(async () => {
    app = await listeningApp();
    client = clientFor(app);
    dir = scratchDir();
    for (const size of SIZES) writeFileSync(join(dir, `p-${size}`), plaintextOf(size));
    const store = (producer: string, size: number, file: string) => {
      if (!made.has(producer)) made.set(producer, new Map());
      made.get(producer)!.set(size, file);
    };
    // The command, once per mode, all sizes at once: each input to IN.ev2 beside it.
    for (const [producer, flags] of [['command-client-side', ['--client-side']], ['command-server-side', []]] as const) {
      const ran = await envelope(['encrypt', ...flags, ...CONTEXT_ARGS, ...SIZES.map((size) => join(dir, `p-${size}`))], { app });
      expect(ran.stderr).not.toContain('failed');
      expect(ran.status).toBe(0);
      for (const size of SIZES) {
        const file = join(dir, `${producer}-${size}.ev2`);
        renameSync(join(dir, `p-${size}.ev2`), file);
        store(producer, size, file);
      }
    }
    for (const size of SIZES) {
      const sources: [string, () => Promise<Buffer>][] = [
        ['route', () => route(app, '/v1/encrypt/stream', plaintextOf(size), { 'x-envelope-context': CONTEXT_HEADER })],
        ['library-server-side', () => collect(client.encryptStream(Readable.from([plaintextOf(size)]), { context: CONTEXT, contentLength: size }))],
        ['library-client-side', () => collect(sealStream(client, Readable.from([plaintextOf(size)]), { context: CONTEXT }))],
      ];
      for (const [producer, produce] of sources) {
        const file = join(dir, `${producer}-${size}.ev2`);
        writeFileSync(file, await produce());
        store(producer, size, file);
      }
    }
  }, 240_000);
  afterAll(async () => app?.close());

  const files = () => [...made.values()].flatMap((bySize) => [...bySize.entries()]);

  it('five producers, four sizes: twenty ciphertexts in stream format v2', () => {
    expect(files()).toHaveLength(20);
    for (const [, file] of files()) expect(readFileSync(file)[0]).toBe(2);
  });

  it.each([
    ['the command (mode read from the input: unwrapped and opened here)', []],
    ['the command with --server-side', ['--server-side']],
  ])('%s opens every one of them', async (_name, flags) => {
    const into = join(dir, `decrypt${flags.join('')}`);
    mkdirSync(into);
    const inputs = files().map(([size, file], index) => {
      const copy = join(into, `${index}-${size}.ev2`);
      cpSync(file, copy);
      return copy;
    });
    const ran = await envelope(['decrypt', ...flags, ...CONTEXT_ARGS, ...inputs], { app });
    expect(ran.stderr).toBe('');
    expect(ran.status).toBe(0);
    for (const input of inputs) {
      const size = Number(/-(\d+)\.ev2$/.exec(input)![1]);
      const output = input.replace(/\.ev2$/, '');
      expect(existsSync(output), output).toBe(true);
      expect(readFileSync(output).equals(plaintextOf(size)), output).toBe(true);
    }
  }, 120_000);

  it('the service route, the library (server-side) and the library (client-side) open every one of them', async () => {
    for (const [size, file] of files()) {
      const ciphertext = readFileSync(file);
      const expected = plaintextOf(size);
      expect((await route(app, '/v1/decrypt/stream', ciphertext)).equals(expected), `route ${file}`).toBe(true);
      expect((await collect(client.decryptStream(Readable.from([ciphertext]), { context: CONTEXT }))).equals(expected), `decryptStream ${file}`).toBe(true);
      expect((await collect(openStream(client, Readable.from([ciphertext])))).equals(expected), `openStream ${file}`).toBe(true);
    }
  }, 120_000);

  it('standard input to standard output, both modes', async () => {
    const plaintext = plaintextOf(SEGMENT + 1);
    for (const flags of [['--client-side'], []]) {
      const sealed = await envelope(['encrypt', ...flags, ...CONTEXT_ARGS], { app, stdin: plaintext });
      expect(sealed.status).toBe(0);
      const opened = await envelope(['decrypt'], { app, stdin: sealed.stdout });
      expect(opened.status).toBe(0);
      expect(opened.stdout.equals(plaintext)).toBe(true);
    }
  }, 120_000);
});
