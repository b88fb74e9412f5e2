/**
 * The stream spool's buffer on its own (src/http/streams/stream-spool.ts), with a real spool
 * directory: while its reader reads, it pushes back on its writer and nothing goes to disk;
 * when its reader stalls, the writer's bytes go on into an unlinked 0600 file, within the
 * quotas; when the reader reads again, the file drains and memory takes over. The bytes come
 * out in the order they went in across every transition (a property, on the fixed seed).
 *
 * A stall is "the reader does not read until the spool has spilled (or the writer is done)":
 * the tests wait for those conditions, never for a duration.
 */
import { randomBytes } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { SpoolQuotaError, StreamSpool, type SpoolBuffer } from '../../src/http/streams/stream-spool.js';
import { seeded, testSeed } from '../helpers/seed.js';

const SEED = testSeed('test/http/stream-spool-buffer.test.ts');
const KiB = 1024;
const MiB = 1024 * KiB;
const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A spool in a fresh directory, and how many bytes it has written to disk so far. */
function spoolWith(limits: { maxBytes?: number; maxBytesPerPrincipal?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'spool-buffer-test-'));
  dirs.push(dir);
  const counted = { spooled: 0, fileWrites: 0 };
  const spool = new StreamSpool(
    { dir, maxBytes: limits.maxBytes ?? 1024 * MiB, maxBytesPerPrincipal: limits.maxBytesPerPrincipal ?? 1024 * MiB },
    {
      spooled: (bytes) => {
        counted.spooled += bytes;
        counted.fileWrites++;
      },
    },
  );
  return { spool, dir, counted };
}

function chunksOf(bytes: Buffer, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const size = sizes[i % sizes.length]!;
    out.push(bytes.subarray(at, at + size));
    at += size;
  }
  return out;
}

/** The writer: each chunk written as the buffer allows (waiting for 'drain'), then end; resolves on 'finish'. */
function writeAll(buffer: SpoolBuffer, chunks: Buffer[], progress: { written: number; pushedBack: number } = { written: 0, pushedBack: 0 }): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    buffer.once('error', reject);
    buffer.once('finish', resolve);
    void (async () => {
      for (const chunk of chunks) {
        progress.written += chunk.length;
        if (!buffer.write(chunk)) {
          progress.pushedBack++;
          await firstOf(buffer, 'drain', 'close');
          if (buffer.destroyed) return;
        }
      }
      buffer.end();
    })();
  });
}

/** Resolves on the first of two events, and leaves no listener behind. */
function firstOf(emitter: EventEmitter, one: string, other: string): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      emitter.off(one, done);
      emitter.off(other, done);
      resolve();
    };
    emitter.on(one, done);
    emitter.on(other, done);
  });
}

/** The reader: takes what the buffer has, chunk by chunk, yielding to the event loop between reads, until `stop` holds or the end. */
async function readWhile(buffer: SpoolBuffer, into: Buffer[], stop: () => boolean = () => false): Promise<boolean> {
  while (!stop()) {
    const chunk = buffer.read() as Buffer | null;
    if (chunk) {
      into.push(chunk);
      await new Promise((resolve) => setImmediate(resolve));
      continue;
    }
    if (buffer.readableEnded) return false;
    await firstOf(buffer, 'readable', 'end');
  }
  return true;
}

/** Resolves once `condition` holds, checking after each turn of the event loop. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 2));
}

const total = (chunks: Buffer[]) => chunks.reduce((sum, chunk) => sum + chunk.length, 0);

describe('SpoolBuffer', () => {
  it('pushes back on its writer while its reader reads, slower than it writes: nothing goes to disk', { timeout: 60_000 }, async () => {
    const { spool, counted } = spoolWith();
    const buffer = spool.buffer('alice');
    const payload = randomBytes(8 * MiB);
    const progress = { written: 0, pushedBack: 0 };
    const out: Buffer[] = [];
    let widestLag = 0;
    const writing = writeAll(buffer, chunksOf(payload, [64 * KiB]), progress);
    await readWhile(buffer, out, () => {
      widestLag = Math.max(widestLag, progress.written - total(out));
      return false;
    });
    await writing;
    expect(Buffer.concat(out).equals(payload)).toBe(true);
    expect(progress.pushedBack).toBeGreaterThan(0);
    // Memory (256 KiB) and the two streams' own buffers: never the stream.
    expect(widestLag).toBeLessThan(1 * MiB);
    expect(counted.spooled).toBe(0);
    expect(spool.bytesNow).toBe(0);
  });

  it('spills to an unlinked 0600 file when its reader stalls, then gives every byte back in order and empties the file', { timeout: 60_000 }, async () => {
    const { spool, dir, counted } = spoolWith();
    const buffer = spool.buffer('alice');
    const payload = randomBytes(4 * MiB);
    // The reader reads nothing until the writer is done: the writer is not held up for good.
    await writeAll(buffer, chunksOf(payload, [64 * KiB]));
    expect(spool.bytesNow).toBeGreaterThan(3 * MiB);
    expect(counted.spooled).toBe(spool.bytesNow);
    expect(readdirSync(dir)).toEqual([]);
    if (existsSync('/proc/self/fd')) {
      const spoolFds = readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`).startsWith(join(dir, 'spool-'));
        } catch {
          return false;
        }
      });
      expect(spoolFds).toHaveLength(1);
      expect(readlinkSync(`/proc/self/fd/${spoolFds[0]}`)).toMatch(/\(deleted\)$/);
      expect(statSync(`/proc/self/fd/${spoolFds[0]}`).mode & 0o777).toBe(0o600);
    }
    const out: Buffer[] = [];
    await readWhile(buffer, out);
    expect(Buffer.concat(out).equals(payload)).toBe(true);
    await until(() => spool.bytesNow === 0);
  });

  it('goes back to memory once its reader reads again and has drained the file: no more disk while it keeps reading', { timeout: 60_000 }, async () => {
    const { spool, counted } = spoolWith();
    const buffer = spool.buffer('alice');
    const payload = randomBytes(16 * MiB);
    const out: Buffer[] = [];
    let writerDone = false;
    const writing = writeAll(buffer, chunksOf(payload, [64 * KiB])).then(() => (writerDone = true));
    await readWhile(buffer, out, () => total(out) >= 2 * MiB);
    // The reader stalls until the writer has put 2 MiB into the file.
    await until(() => spool.bytesNow >= 2 * MiB);
    const spooledAtResume = counted.spooled;
    let drained = false;
    await readWhile(buffer, out, () => {
      drained ||= spool.bytesNow === 0 && !writerDone;
      return false;
    });
    await writing;
    expect(Buffer.concat(out).equals(payload)).toBe(true);
    // The file was emptied while the writer still had bytes (back to memory), and nothing more
    // went to disk after the reader read again.
    expect(drained).toBe(true);
    expect(counted.spooled).toBe(spooledAtResume);
    expect(spool.bytesNow).toBe(0);
  });

  it('takes a writer of 1-byte chunks in batches while its reader stalls: a file write per batch, not per byte', { timeout: 60_000 }, async () => {
    const { spool, counted } = spoolWith();
    const buffer = spool.buffer('alice');
    const payload = randomBytes(1 * MiB);
    let writerDone = false;
    const writing = writeAll(buffer, chunksOf(payload, [1])).then(() => (writerDone = true));
    await until(() => writerDone);
    // Memory held its 256 KiB; the rest went to the file in writes of many chunks each.
    expect(spool.bytesNow).toBeGreaterThan(512 * KiB);
    expect(counted.fileWrites).toBeLessThan(64);
    const out: Buffer[] = [];
    await readWhile(buffer, out);
    await writing;
    expect(Buffer.concat(out).equals(payload)).toBe(true);
    await until(() => spool.bytesNow === 0);
  });

  it('keeps the order of the bytes across memory, file and memory again, whatever the chunks and the stalls (property)', { timeout: 120_000 }, async () => {
    const phase = fc.oneof(fc.record({ read: fc.integer({ min: 1, max: 1 * MiB }) }), fc.constant({ stall: true as const }));
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 * MiB }),
        fc.array(fc.integer({ min: 1, max: 300 * KiB }), { minLength: 1, maxLength: 8 }),
        fc.array(phase, { minLength: 1, maxLength: 5 }).filter((phases) => phases.filter((p) => 'stall' in p).length <= 2),
        async (size, sizes, phases) => {
          const { spool, counted } = spoolWith();
          const buffer = spool.buffer('alice');
          const payload = randomBytes(size);
          let writerDone = false;
          const writing = writeAll(buffer, chunksOf(payload, sizes)).then(() => (writerDone = true));
          const out: Buffer[] = [];
          for (const step of phases) {
            if ('read' in step) {
              const target = total(out) + step.read;
              await readWhile(buffer, out, () => total(out) >= target);
            } else {
              // Read nothing until the buffer has spilled (a write waited) or the writer is done.
              const before = counted.spooled;
              await until(() => counted.spooled > before || writerDone);
            }
          }
          await readWhile(buffer, out);
          await writing;
          expect(Buffer.concat(out).equals(payload)).toBe(true);
          await until(() => spool.bytesNow === 0);
        },
      ),
      seeded(SEED, 8),
    );
  });

  it.each([
    { quota: 'STREAM_SPOOL_MAX_BYTES_PER_PRINCIPAL', limits: { maxBytesPerPrincipal: 1 * MiB } },
    { quota: 'STREAM_SPOOL_MAX_BYTES', limits: { maxBytes: 1 * MiB } },
  ])('fails its writer past $quota when its reader stalls, and gives the bytes back', { timeout: 60_000 }, async ({ quota, limits }) => {
    const { spool } = spoolWith(limits);
    const buffer = spool.buffer('alice');
    const failure = await writeAll(buffer, chunksOf(randomBytes(4 * MiB), [64 * KiB])).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(SpoolQuotaError);
    expect((failure as Error).message).toContain(quota);
    await until(() => buffer.destroyed && spool.bytesNow === 0);
  });
});
