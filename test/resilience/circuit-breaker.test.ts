/**
 * The KMS circuit breaker's state machine, on an injected clock: what opens it, what it does
 * while open, the single half-open probe, and what closes it. The HTTP view (503, Retry-After,
 * recovery against a real KMS endpoint behind a fault proxy) is in fault-matrix.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { CircuitBreaker, CircuitOpenError, isKmsOutage, withCircuitBreaker } from '../../src/kms/circuit-breaker.js';
import { KmsError, type KmsErrorCode } from '../../src/kms/errors.js';
import type { KeyProvider, KmsOperation } from '../../src/kms/provider.js';

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

function breaker(options: Partial<ConstructorParameters<typeof CircuitBreaker>[0]> = {}) {
  const time = clock();
  const changes: string[] = [];
  const rejected: KmsOperation[] = [];
  const b = new CircuitBreaker({
    failureThreshold: 3,
    cooldownMs: 5_000,
    now: time.now,
    onStateChange: ({ from, to }) => changes.push(`${from}->${to}`),
    onReject: (operation) => rejected.push(operation),
    ...options,
  });
  return { b, time, changes, rejected };
}

const fail = (code: KmsErrorCode) => () => Promise.reject(new KmsError(code, `injected ${code}`));
const ok = () => Promise.resolve('ok');

async function failTimes(b: CircuitBreaker, times: number, code: KmsErrorCode = 'Unavailable') {
  for (let i = 0; i < times; i++) await expect(b.run('GenerateDataKey', fail(code))).rejects.toThrow(KmsError);
}

describe('CircuitBreaker', () => {
  it('opens after N consecutive Unavailable calls, not before', async () => {
    const { b, changes } = breaker();
    await failTimes(b, 2, 'Unavailable');
    expect(b.state).toBe('closed');
    await failTimes(b, 1, 'Unavailable');
    expect(b.state).toBe('open');
    expect(changes).toEqual(['closed->open']);
  });

  it('throttling never opens the circuit: KMS answered, refusing rate (one caller\'s burst must not fail everyone)', async () => {
    const { b, changes } = breaker();
    await failTimes(b, 2, 'Unavailable');
    await failTimes(b, 20, 'Throttled');
    expect(b.state).toBe('closed');
    expect(b.consecutiveFailures).toBe(0);
    expect(changes).toEqual([]);
  });

  it('a success (or any answer from KMS) in between resets the count', async () => {
    const { b } = breaker();
    await failTimes(b, 2);
    await b.run('DescribeKey', ok);
    await failTimes(b, 2);
    expect(b.state).toBe('closed');
    // Key-state and caller errors mean KMS answered: they reset the count too.
    for (const code of ['KeyDisabled', 'KeyNotFound', 'AccessDenied', 'InvalidCiphertext', 'KeyUnavailableState', 'InvalidRequest'] as const) {
      await expect(b.run('Decrypt', fail(code))).rejects.toMatchObject({ code });
    }
    expect(b.consecutiveFailures).toBe(0);
    await failTimes(b, 2);
    expect(b.state).toBe('closed');
  });

  it('errors that are not KmsErrors (bugs) neither count nor reset', async () => {
    const { b } = breaker();
    await failTimes(b, 2);
    await expect(b.run('Decrypt', () => Promise.reject(new TypeError('bug')))).rejects.toThrow(TypeError);
    expect(b.consecutiveFailures).toBe(2);
  });

  it('while open: fails fast without calling KMS, with the cooldown left as retryAfterMs', async () => {
    const { b, time, rejected } = breaker();
    await failTimes(b, 3);
    let called = 0;
    time.advance(1_200);
    const error = await b.run('GenerateDataKey', async () => void called++).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(error).toBeInstanceOf(KmsError);
    expect((error as CircuitOpenError).code).toBe('Unavailable');
    expect((error as CircuitOpenError).retryAfterMs).toBe(3_800);
    expect(called).toBe(0);
    expect(rejected).toEqual(['GenerateDataKey']);
  });

  it('after the cooldown: half-open, exactly one probe goes through, the rest fail fast', async () => {
    const { b, time } = breaker();
    await failTimes(b, 3);
    time.advance(5_000);
    expect(b.state).toBe('half-open');
    let release!: (value: string) => void;
    const probe = b.run('DescribeKey', () => new Promise<string>((resolve) => (release = resolve)));
    const second = await b.run('GenerateDataKey', ok).catch((e: unknown) => e);
    expect(second).toBeInstanceOf(CircuitOpenError);
    expect((second as CircuitOpenError).retryAfterMs).toBeGreaterThan(0);
    release('ok');
    await expect(probe).resolves.toBe('ok');
    expect(b.state).toBe('closed');
    await expect(b.run('GenerateDataKey', ok)).resolves.toBe('ok');
  });

  it('a failed probe opens the circuit for another full cooldown', async () => {
    const { b, time, changes } = breaker();
    await failTimes(b, 3);
    time.advance(5_000);
    await failTimes(b, 1, 'Unavailable');
    expect(b.state).toBe('open');
    time.advance(4_999);
    await expect(b.run('Decrypt', ok)).rejects.toBeInstanceOf(CircuitOpenError);
    time.advance(1);
    await expect(b.run('Decrypt', ok)).resolves.toBe('ok');
    expect(changes).toEqual(['closed->open', 'open->half-open', 'half-open->open', 'open->half-open', 'half-open->closed']);
  });

  it('a probe answered with a key-state error closes the circuit (KMS is up)', async () => {
    const { b, time } = breaker();
    await failTimes(b, 3);
    time.advance(5_000);
    await expect(b.run('GenerateDataKey', fail('KeyDisabled'))).rejects.toMatchObject({ code: 'KeyDisabled' });
    expect(b.state).toBe('closed');
  });

  it('a probe that hits a bug frees the probe slot for the next call', async () => {
    const { b, time } = breaker();
    await failTimes(b, 3);
    time.advance(5_000);
    await expect(b.run('Decrypt', () => Promise.reject(new TypeError('bug')))).rejects.toThrow(TypeError);
    await expect(b.run('Decrypt', ok)).resolves.toBe('ok');
    expect(b.state).toBe('closed');
  });

  it('answers from calls started before the circuit opened change nothing', async () => {
    const { b } = breaker();
    let finishSlow!: () => void;
    const slow = b.run('DescribeKey', () => new Promise<string>((resolve) => (finishSlow = () => resolve('late'))));
    await failTimes(b, 3);
    expect(b.state).toBe('open');
    finishSlow();
    await expect(slow).resolves.toBe('late');
    expect(b.state).toBe('open');
  });

  it('rejects nonsense settings', () => {
    expect(() => new CircuitBreaker({ failureThreshold: 0, cooldownMs: 1 })).toThrow(RangeError);
    expect(() => new CircuitBreaker({ failureThreshold: 1, cooldownMs: 0 })).toThrow(RangeError);
  });

  it('isKmsOutage: only Unavailable', () => {
    expect(isKmsOutage(new KmsError('Unavailable', 'x'))).toBe(true);
    expect(isKmsOutage(new KmsError('Throttled', 'x'))).toBe(false);
    expect(isKmsOutage(new KmsError('KeyDisabled', 'x'))).toBe(false);
    expect(isKmsOutage(new Error('x'))).toBe(false);
  });
});

describe('withCircuitBreaker', () => {
  it('guards every KMS operation of the provider and passes close() through', async () => {
    const calls: string[] = [];
    let closed = false;
    const failing: KeyProvider = {
      kind: 'aws',
      generateDataKey: async () => (calls.push('GenerateDataKey'), Promise.reject(new KmsError('Unavailable', 'down'))),
      decryptDataKey: async () => (calls.push('Decrypt'), Promise.reject(new KmsError('Unavailable', 'down'))),
      reEncryptDataKey: async () => (calls.push('ReEncrypt'), Promise.reject(new KmsError('Unavailable', 'down'))),
      encryptDataKey: async () => (calls.push('Encrypt'), Promise.reject(new KmsError('Unavailable', 'down'))),
      describeKey: async () => (calls.push('DescribeKey'), Promise.reject(new KmsError('Unavailable', 'down'))),
      listAliases: async () => (calls.push('ListAliases'), Promise.reject(new KmsError('Unavailable', 'down'))),
      close: async () => void (closed = true),
    };
    const { b, rejected } = breaker({ failureThreshold: 5 });
    const guarded = withCircuitBreaker(failing, b);
    const wrapped = Buffer.from('w');
    const all = () => [
      guarded.generateDataKey('k', {}),
      guarded.decryptDataKey(wrapped, 'k', {}),
      guarded.reEncryptDataKey(wrapped, 'k', {}, 'k2', {}),
      guarded.encryptDataKey(Buffer.alloc(32), 'k', {}),
      guarded.describeKey('k'),
      guarded.listAliases(),
    ];
    for (const result of await Promise.allSettled(all())) expect(result.status).toBe('rejected');
    expect(calls).toEqual(['GenerateDataKey', 'Decrypt', 'ReEncrypt', 'Encrypt', 'DescribeKey', 'ListAliases']);
    expect(b.state).toBe('open');
    const second = await Promise.allSettled(all());
    for (const result of second) expect((result as PromiseRejectedResult).reason).toBeInstanceOf(CircuitOpenError);
    expect(calls).toHaveLength(6);
    expect(rejected).toEqual(['GenerateDataKey', 'Decrypt', 'ReEncrypt', 'Encrypt', 'DescribeKey', 'ListAliases']);
    expect(guarded.kind).toBe('aws');
    await guarded.close();
    expect(closed).toBe(true);
  });
});
