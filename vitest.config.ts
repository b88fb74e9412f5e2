import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Suites start real processes (local-kms, the service, Chromium) on loopback ports;
    // two workers match the two cores these machines have.
    maxWorkers: 2,
    globalSetup: ['test/helpers/global-setup.ts'],
  },
});
