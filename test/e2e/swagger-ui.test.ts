/**
 * Swagger UI in a real browser: the documented way to try the API must actually work.
 *
 * The service listens on a random loopback port; Debian's Chromium (scripts/install-chromium.sh)
 * opens /docs, authorizes with the dev token, runs "Try it out" on POST /v1/encrypt and must see
 * a 200 with an `ev1:` ciphertext. Then, as a user of a fresh dev instance would, it executes
 * every operation with the example the UI pre-fills, unedited (the JSON and text bodies, the
 * header parameters), and expects each operation's documented success status. An ops person's
 * incident action runs through the UI too: POST /v1/admin/cache/evict drops the cached data key. Along the way it
 * checks what a unit test cannot:
 *   - the page renders under the /docs Content-Security-Policy, with no CSP violation at all;
 *   - "Try it out" reaches the running service through the spec's relative server URL (`/`);
 *   - the browser never talks to any origin but the service (no validator, CDN or font host).
 * A screenshot of the executed request lands in test/e2e/__screenshots__/ (gitignored).
 *
 * Without Chromium: skipped locally with a message, failed when CI=true.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEV_TOKEN, buildTestApp, type TestApp } from '../helpers/app.js';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SCREENSHOT_DIR = join(dirname(fileURLToPath(import.meta.url)), '__screenshots__');
/** Per browser action; the whole test is bounded by the it() timeout below. */
const STEP_TIMEOUT_MS = 10_000;
const TEST_TIMEOUT_MS = 30_000;
/** Twenty operations, one after the other, on two busy cores. */
const EXAMPLES_TIMEOUT_MS = 150_000;
const POLL = { timeout: STEP_TIMEOUT_MS };

const haveChromium = existsSync(CHROMIUM);
const inCi = process.env.CI === 'true';

if (!haveChromium && !inCi) {
  console.warn(`[e2e] ${CHROMIUM} not found: Swagger UI browser tests SKIPPED. Install it with scripts/install-chromium.sh (as root).`);
}

describe('Swagger UI at /docs (Chromium)', () => {
  if (!haveChromium && inCi) {
    it('has Chromium in CI', () => {
      expect.fail(`CI=true but ${CHROMIUM} is missing: run scripts/install-chromium.sh before the tests (the browser test must not be skipped in CI)`);
    });
  }

  describe.runIf(haveChromium)('with a running service', () => {
    let service: TestApp;
    let base: string;
    let browser: Browser;

    beforeAll(async () => {
      service = await buildTestApp();
      await service.app.listen({ port: 0, host: '127.0.0.1' });
      const address = service.app.server.address();
      if (!address || typeof address === 'string') throw new Error('service has no TCP address');
      base = `http://127.0.0.1:${address.port}`;
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 20_000 });
    }, 30_000);

    afterAll(async () => {
      await browser?.close();
      await service?.close();
    });

    it(
      'authorizes with the dev token and encrypts through "Try it out"',
      async () => {
        // A fresh context is a fresh profile: no stored authorization, cookies or cache.
        const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
        const page = await context.newPage();
        page.setDefaultTimeout(STEP_TIMEOUT_MS);
        const watch = watchPage(page, base);
        rmSync(join(SCREENSHOT_DIR, 'swagger-ui-failure.png'), { force: true });
        try {
          const response = await page.goto(`${base}/docs`, { waitUntil: 'domcontentloaded' });
          expect(response?.status()).toBe(200);
          await expect.poll(() => page.locator('.swagger-ui .info .title').textContent(), POLL).toContain('Envelope encryption service');

          await authorize(page);

          // POST /v1/encrypt: expand, Try it out, body, Execute.
          const operation = page.locator('#operations-envelope-encrypt');
          await operation.locator('.opblock-summary-control').click();
          const tryItOut = operation.locator('button.try-out__btn', { hasText: 'Try it out' });
          if (await tryItOut.isVisible()) await tryItOut.click();
          const body = operation.locator('textarea.body-param__text');
          await body.fill(JSON.stringify({ plaintext: 'aGVsbG8=' }));
          const [apiResponse] = await Promise.all([
            page.waitForResponse((r) => r.url() === `${base}/v1/encrypt` && r.request().method() === 'POST'),
            operation.locator('button.execute').click(),
          ]);
          expect(apiResponse.status()).toBe(200);
          expect(apiResponse.request().headers()['authorization']).toBe(`Bearer ${DEV_TOKEN}`);

          // What the reader sees: the request URL on this service, status 200, an ev1: ciphertext.
          const live = operation.locator('.responses-wrapper .live-responses-table');
          await live.waitFor();
          await expect.poll(() => operation.locator('.request-url pre').textContent(), POLL).toBe(`${base}/v1/encrypt`);
          await expect.poll(() => live.locator('tbody .response-col_status').first().textContent(), POLL).toContain('200');
          const shown = (await live.locator('tbody .response-col_description pre').first().textContent()) ?? '';
          const result = JSON.parse(shown) as { ciphertext: string; keyId: string };
          expect(result.ciphertext).toMatch(/^ev1:[A-Za-z0-9_-]+$/);
          expect(result.keyId).toMatch(/^arn:aws:kms:/);

          // The ciphertext is real: it decrypts back through the API.
          const roundTrip = await request(base).post('/v1/decrypt').set({ authorization: `Bearer ${DEV_TOKEN}` }).send({ ciphertext: result.ciphertext });
          expect(roundTrip.body).toMatchObject({ plaintext: 'aGVsbG8=' });

          // The screenshot frames what a person checks: the request sent and the 200 it got.
          mkdirSync(SCREENSHOT_DIR, { recursive: true });
          await operation.locator('.responses-wrapper').evaluate((element) => element.scrollIntoView({ block: 'start' }));
          await page.screenshot({ path: join(SCREENSHOT_DIR, 'swagger-ui-encrypt.png') });

          expect(watch.cspViolations, 'CSP violations on /docs').toEqual([]);
          expect(watch.foreignRequests, 'requests to other origins').toEqual([]);
          expect(watch.pageErrors, 'uncaught page errors').toEqual([]);
        } catch (error) {
          // Leave evidence for whoever reads the CI log: what the page looked like at the failure.
          mkdirSync(SCREENSHOT_DIR, { recursive: true });
          await page.screenshot({ path: join(SCREENSHOT_DIR, 'swagger-ui-failure.png'), fullPage: true }).catch(() => undefined);
          if (watch.cspViolations.length + watch.foreignRequests.length + watch.pageErrors.length > 0) {
            console.error('[e2e] page problems before the failure:', watch);
          }
          throw error;
        } finally {
          await context.close();
        }
      },
      TEST_TIMEOUT_MS,
    );

    it(
      'evicts the cached data keys of a KMS key through the admin section',
      async () => {
        const auth = { authorization: `Bearer ${DEV_TOKEN}` };
        const encrypted = await request(base).post('/v1/encrypt').set(auth).send({ plaintext: 'aGVsbG8=' });
        expect(encrypted.status).toBe(200);
        const cachedKeys = async () => {
          const state = (await request(base).get('/v1/admin/cache').set(auth)).body as { caches: Array<{ kind: string; entries: number }> };
          return state.caches.find((cache) => cache.kind === 'encrypt')!.entries;
        };
        expect(await cachedKeys()).toBeGreaterThan(0);

        const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
        const page = await context.newPage();
        page.setDefaultTimeout(STEP_TIMEOUT_MS);
        const watch = watchPage(page, base);
        try {
          expect((await page.goto(`${base}/docs`, { waitUntil: 'domcontentloaded' }))?.status()).toBe(200);
          await expect.poll(() => page.locator('.swagger-ui .info .title').textContent(), POLL).toContain('Envelope encryption service');
          await authorize(page);

          // The admin tag's evict, with the example the UI pre-fills: { "keyId": "alias/default" }.
          const operation = page.locator('#operations-admin-adminEvictCache');
          await operation.locator('.opblock-summary-control').click();
          const tryItOut = operation.locator('button.try-out__btn', { hasText: 'Try it out' });
          if (await tryItOut.isVisible()) await tryItOut.click();
          expect(JSON.parse(await operation.locator('textarea.body-param__text').inputValue())).toEqual({ keyId: 'alias/default' });
          const [apiResponse] = await Promise.all([
            page.waitForResponse((r) => r.url() === `${base}/v1/admin/cache/evict` && r.request().method() === 'POST'),
            operation.locator('button.execute').click(),
          ]);
          expect(apiResponse.status()).toBe(200);
          const live = operation.locator('.responses-wrapper .live-responses-table');
          await expect.poll(() => live.locator('tbody .response-col_status').first().textContent(), POLL).toContain('200');
          const shown = JSON.parse((await live.locator('tbody .response-col_description pre').first().textContent()) ?? '') as { dropped: number; encrypt: number };
          expect(shown.encrypt).toBeGreaterThan(0);
          expect(shown.dropped).toBeGreaterThanOrEqual(shown.encrypt);
          expect(await cachedKeys()).toBe(0);

          mkdirSync(SCREENSHOT_DIR, { recursive: true });
          await operation.locator('.responses-wrapper').evaluate((element) => element.scrollIntoView({ block: 'start' }));
          await page.screenshot({ path: join(SCREENSHOT_DIR, 'swagger-ui-admin-evict.png') });
          expect(watch.cspViolations, 'CSP violations on /docs').toEqual([]);
          expect(watch.foreignRequests, 'requests to other origins').toEqual([]);
          expect(watch.pageErrors, 'uncaught page errors').toEqual([]);
        } catch (error) {
          mkdirSync(SCREENSHOT_DIR, { recursive: true });
          await page.screenshot({ path: join(SCREENSHOT_DIR, 'swagger-ui-admin-failure.png'), fullPage: true }).catch(() => undefined);
          throw error;
        } finally {
          await context.close();
        }
      },
      TEST_TIMEOUT_MS,
    );

    it(
      'executes every operation\'s default example, unedited, and gets its documented success status',
      async () => {
        const served = (await request(base).get('/openapi.json')).body as ServedDocument;
        const operations = Object.entries(served.paths).flatMap(([path, item]) =>
          Object.entries(item).map(([method, operation]) => ({
            path,
            method: method.toUpperCase(),
            id: `operations-${operation.tags[0]}-${operation.operationId}`,
            success: Number(Object.keys(operation.responses).filter((status) => /^2\d\d$/.test(status)).sort()[0]),
          })),
        );
        expect(operations).toHaveLength(21);

        const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
        const page = await context.newPage();
        page.setDefaultTimeout(STEP_TIMEOUT_MS);
        const watch = watchPage(page, base);
        const statuses: Record<string, number> = {};
        try {
          expect((await page.goto(`${base}/docs`, { waitUntil: 'domcontentloaded' }))?.status()).toBe(200);
          await expect.poll(() => page.locator('.swagger-ui .info .title').textContent(), POLL).toContain('Envelope encryption service');
          await authorize(page);

          for (const { path, method, id } of operations) {
            const operation = page.locator(`[id="${id}"]`);
            await operation.locator('.opblock-summary-control').click();
            const tryItOut = operation.locator('button.try-out__btn', { hasText: 'Try it out' });
            if (await tryItOut.isVisible()) await tryItOut.click();
            const [apiResponse] = await Promise.all([
              page.waitForResponse((r) => r.url() === `${base}${path}` && r.request().method() === method),
              operation.locator('button.execute').click(),
            ]);
            statuses[`${method} ${path}`] = apiResponse.status();
            const sent = apiResponse.request().headers();
            if (path.startsWith('/v1/')) expect(sent['authorization']).toBe(`Bearer ${DEV_TOKEN}`);
            // Nothing the reader cannot see: no aad goes out unless typed in (its field is empty).
            expect(sent['x-envelope-aad'], `${method} ${path}`).toBeUndefined();
            // What the reader sees: the status in the live response table.
            await expect
              .poll(() => operation.locator('.live-responses-table tbody .response-col_status').first().textContent(), POLL)
              .toContain(String(apiResponse.status()));
          }
          expect(statuses).toEqual(Object.fromEntries(operations.map(({ path, method, success }) => [`${method} ${path}`, success])));

          expect(watch.cspViolations, 'CSP violations on /docs').toEqual([]);
          expect(watch.foreignRequests, 'requests to other origins').toEqual([]);
          expect(watch.pageErrors, 'uncaught page errors').toEqual([]);
        } catch (error) {
          mkdirSync(SCREENSHOT_DIR, { recursive: true });
          await page.screenshot({ path: join(SCREENSHOT_DIR, 'swagger-ui-examples-failure.png'), fullPage: true }).catch(() => undefined);
          console.error('[e2e] statuses so far:', statuses, 'page problems:', watch);
          throw error;
        } finally {
          await context.close();
        }
      },
      EXAMPLES_TIMEOUT_MS,
    );
  });
});

interface ServedDocument {
  paths: Record<string, Record<string, { operationId: string; tags: string[]; responses: Record<string, unknown> }>>;
}

/** Authorize: the bearerAuth scheme's dialog, value dev-token. */
async function authorize(page: Page): Promise<void> {
  await page.locator('.auth-wrapper button.authorize').click();
  const dialog = page.locator('.dialog-ux .modal-ux');
  await dialog.locator('h4', { hasText: 'bearerAuth' }).waitFor();
  await dialog.locator('input#auth-bearer-value').fill(DEV_TOKEN);
  await dialog.getByRole('button', { name: 'Apply credentials' }).click();
  // Authorized state: the value is masked and the button turns into Logout.
  await dialog.locator('h6', { hasText: 'Authorized' }).waitFor();
  await dialog.locator('button', { hasText: 'Logout' }).waitFor();
  await dialog.locator('button.btn-done', { hasText: 'Close' }).click();
  await dialog.waitFor({ state: 'detached' });
}

/** Collects what must not happen while the page is used. */
function watchPage(page: Page, base: string) {
  const seen = { cspViolations: [] as string[], foreignRequests: [] as string[], pageErrors: [] as string[] };
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) seen.cspViolations.push(message.text());
  });
  page.on('pageerror', (error) => seen.pageErrors.push(error.message));
  page.on('request', (request) => {
    const url = request.url();
    if (!url.startsWith(`${base}/`) && !url.startsWith('data:')) seen.foreignRequests.push(url);
  });
  return seen;
}
