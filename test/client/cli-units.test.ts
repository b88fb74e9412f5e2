/**
 * The command's small parts a script relies on: the progress bar only on a terminal and only
 * for large inputs; the retry schedule (Retry-After honoured, with jitter; too long a wait
 * returned to the caller); arguments that cannot silently mean something else.
 */
import { createServer } from 'node:net';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY, retryDelayMs } from '../../src/client/retry.js';
import { PROGRESS_MIN_BYTES, progressFor } from '../../src/client/cli/progress.js';
import { contextOption } from '../../src/client/cli/command.js';
import { envelope } from './helpers.js';

function sink(isTTY: boolean): Writable & { isTTY: boolean; text: string } {
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      stream.text += chunk.toString();
      callback();
    },
  }) as Writable & { isTTY: boolean; text: string };
  stream.isTTY = isTTY;
  stream.text = '';
  return stream;
}

describe('progress bar', () => {
  it('draws on a terminal for a large file, never on a pipe or for a small file', () => {
    for (const [isTTY, size, draws] of [[true, PROGRESS_MIN_BYTES, true], [false, PROGRESS_MIN_BYTES, false], [true, PROGRESS_MIN_BYTES - 1, false], [true, undefined, false]] as const) {
      const stderr = sink(isTTY);
      const progress = progressFor('encrypt f', size, stderr as never);
      progress.tick(PROGRESS_MIN_BYTES);
      progress.stop();
      expect(stderr.text.length > 0, `${isTTY} ${size}`).toBe(draws);
    }
  });
});

describe('retry schedule', () => {
  const options = { ...DEFAULT_RETRY, baseDelayMs: 100, maxDelayMs: 10_000, maxAttempts: 4 };
  it('waits at least Retry-After, plus at most one base delay of jitter', () => {
    expect(retryDelayMs(options, 1, 2, () => 0)).toBe(2000);
    expect(retryDelayMs(options, 1, 2, () => 0.999)).toBeCloseTo(2099.9);
  });
  it('without Retry-After: full jitter under an exponential ceiling', () => {
    expect(retryDelayMs(options, 1, undefined, () => 0.999)).toBeLessThan(100);
    expect(retryDelayMs(options, 3, undefined, () => 0.999)).toBeLessThan(400);
    expect(retryDelayMs(options, 3, undefined, () => 0.999)).toBeGreaterThan(300);
  });
  it('stops after the last attempt, and when Retry-After is longer than maxDelayMs', () => {
    expect(retryDelayMs(options, 4, 1)).toBeUndefined();
    expect(retryDelayMs(options, 1, 60)).toBeUndefined();
  });
});

describe('arguments', () => {
  it('--context refuses a repeated key and a pair without "="', () => {
    expect(contextOption({ context: ['tenant=a', 'purpose=b=c'] })).toEqual({ tenant: 'a', purpose: 'b=c' });
    expect(() => contextOption({ context: ['tenant=a', 'tenant=b'] })).toThrow('repeats the key "tenant"');
    expect(() => contextOption({ context: ['tenant'] })).toThrow('key=value');
  });

  it('usage errors exit 2: unknown command, unknown option, no URL or token; --token is not an option', async () => {
    expect((await envelope(['frobnicate'])).status).toBe(2);
    const noUrl = await envelope(['keys']);
    expect(noUrl.status).toBe(2);
    expect(noUrl.stderr).toContain('ENVELOPE_URL');
    const noToken = await envelope(['keys'], { env: { ENVELOPE_URL: 'http://127.0.0.1:9' } });
    expect(noToken.status).toBe(2);
    expect(noToken.stderr).toContain('ENVELOPE_TOKEN');
    const tokenFlag = await envelope(['keys', '--token', 'secret'], { env: { ENVELOPE_URL: 'http://127.0.0.1:9', ENVELOPE_TOKEN: 't' } });
    expect(tokenFlag.status).toBe(2);
    expect(tokenFlag.stderr).toContain("Unknown option '--token'");
  }, 60_000);

  it('an unreachable service exits 7 (try again later), naming the reason', async () => {
    // A port that was free a moment ago: nothing listens there.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as { port: number };
    await new Promise((resolve) => probe.close(resolve));
    const ran = await envelope(['keys', '--timeout-ms', '2000'], { env: { ENVELOPE_URL: `http://127.0.0.1:${port}`, ENVELOPE_TOKEN: 't' } });
    expect(ran.status).toBe(7);
    expect(ran.stderr).toContain('ECONNREFUSED');
  }, 60_000);
});
