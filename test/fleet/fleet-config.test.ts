/**
 * The fleet's settings are checked at start like every other: a REDIS_URL that is not a Redis
 * URL, or a confirmation wait the request timeout would cut, stops the process with a message
 * naming the variable.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

describe('fleet configuration', () => {
  it('defaults: no Redis, a 2 s confirmation wait, a 5 s heartbeat', () => {
    const config = loadConfig({});
    expect(config.REDIS_URL).toBeUndefined();
    expect(config.FLEET_CONFIRM_TIMEOUT_MS).toBe(2_000);
    expect(config.FLEET_HEARTBEAT_MS).toBe(5_000);
  });

  it('accepts redis:// and rediss:// URLs', () => {
    expect(loadConfig({ REDIS_URL: 'redis://:secret@redis:6379/0' }).REDIS_URL).toBe('redis://:secret@redis:6379/0');
    expect(loadConfig({ REDIS_URL: 'rediss://redis.internal:6380' }).REDIS_URL).toBe('rediss://redis.internal:6380');
  });

  it('refuses a REDIS_URL of another scheme, naming the variable', () => {
    expect(() => loadConfig({ REDIS_URL: 'http://redis:6379' })).toThrow(ConfigError);
    expect(() => loadConfig({ REDIS_URL: 'http://redis:6379' })).toThrow(/^REDIS_URL/);
  });

  it('refuses a confirmation wait at or above REQUEST_TIMEOUT_MS when Redis is configured (the answer would be cut)', () => {
    expect(() => loadConfig({ REDIS_URL: 'redis://redis:6379', FLEET_CONFIRM_TIMEOUT_MS: '30000' })).toThrow(/FLEET_CONFIRM_TIMEOUT_MS must be below REQUEST_TIMEOUT_MS/);
    expect(loadConfig({ REDIS_URL: 'redis://redis:6379', FLEET_CONFIRM_TIMEOUT_MS: '29999' }).FLEET_CONFIRM_TIMEOUT_MS).toBe(29_999);
    // Without Redis the setting is unused, and a short REQUEST_TIMEOUT_MS stays valid.
    expect(loadConfig({ REQUEST_TIMEOUT_MS: '1000' }).REQUEST_TIMEOUT_MS).toBe(1_000);
  });
});
