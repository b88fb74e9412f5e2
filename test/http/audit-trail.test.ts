/**
 * The audit trail seen from the API: every endpoint, succeeding and failing, leaves exactly one
 * CloudTrail-shaped event; no secret reaches any log; a failing sink fails requests closed.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditLog } from '../../src/verifier/verify.js';
import { captureAppLog } from '../helpers/app-log-capture.js';
import { AUTH, buildTestApp, type TestApp } from '../helpers/app.js';

type Event = Record<string, any>;

describe('one audit event per request, for every endpoint', () => {
  let t: TestApp;
  let ciphertext: string;
  beforeAll(async () => {
    t = await buildTestApp();
    ciphertext = (await request(t.app.server).post('/v1/encrypt').set(AUTH).send({ plaintext: 'aGk=', context: { tenant: 'a' } })).body.ciphertext;
  });
  afterAll(async () => t?.close());

  // The 401s fail for distinct reasons: repeats of one reason from one address within a window
  // are counted into a summary event instead (test/admission/auth-failure-flood.test.ts).
  const cases: { name: string; method: 'get' | 'post'; path: string; body?: () => any; auth?: boolean; badAuth?: string; status: number; eventName: string }[] = [
    { name: 'encrypt ok', method: 'post', path: '/v1/encrypt', body: () => ({ plaintext: 'aGk=' }), status: 200, eventName: 'Encrypt' },
    { name: 'encrypt 401', method: 'post', path: '/v1/encrypt', body: () => ({ plaintext: 'aGk=' }), auth: false, status: 401, eventName: 'Encrypt' },
    { name: 'encrypt 400', method: 'post', path: '/v1/encrypt', body: () => ({ plaintext: '%%%' }), status: 400, eventName: 'Encrypt' },
    { name: 'encrypt 404', method: 'post', path: '/v1/encrypt', body: () => ({ plaintext: 'aGk=', keyId: 'alias/none' }), status: 404, eventName: 'Encrypt' },
    { name: 'decrypt ok', method: 'post', path: '/v1/decrypt', body: () => ({ ciphertext }), status: 200, eventName: 'Decrypt' },
    { name: 'decrypt 422', method: 'post', path: '/v1/decrypt', body: () => ({ ciphertext: `${ciphertext.slice(0, -4)}AAAA` }), status: 422, eventName: 'Decrypt' },
    { name: 'encrypt batch', method: 'post', path: '/v1/encrypt/batch', body: () => ({ items: [{ plaintext: 'aGk=' }, { plaintext: 'aGk=', keyId: 'alias/none' }] }), status: 200, eventName: 'EncryptBatch' },
    { name: 'decrypt batch', method: 'post', path: '/v1/decrypt/batch', body: () => ({ items: [{ ciphertext }] }), status: 200, eventName: 'DecryptBatch' },
    { name: 'rewrap ok', method: 'post', path: '/v1/rewrap', body: () => ({ ciphertext }), status: 200, eventName: 'ReEncrypt' },
    { name: 'rewrap 422', method: 'post', path: '/v1/rewrap', body: () => ({ ciphertext: 'ev1:AAAA' }), status: 422, eventName: 'ReEncrypt' },
    { name: 'datakey ok', method: 'post', path: '/v1/datakey', body: () => ({ includePlaintext: true }), status: 200, eventName: 'GenerateDataKey' },
    { name: 'datakey 401', method: 'post', path: '/v1/datakey', body: () => ({}), auth: false, badAuth: 'Bearer not a token', status: 401, eventName: 'GenerateDataKey' },
    { name: 'keys ok', method: 'get', path: '/v1/keys', status: 200, eventName: 'ListKeys' },
    { name: 'keys 401', method: 'get', path: '/v1/keys', auth: false, badAuth: 'Basic Zm9vOmJhcg==', status: 401, eventName: 'ListKeys' },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const before = t.auditEvents().length;
      let call = request(t.app.server)[c.method](c.path);
      if (c.auth !== false) call = call.set(AUTH);
      else if (c.badAuth) call = call.set({ authorization: c.badAuth });
      const response = c.body ? await call.send(c.body()) : await call;
      expect(response.status).toBe(c.status);
      const events = t.auditEvents().slice(before);
      expect(events).toHaveLength(1);
      const event = events[0] as Event;
      expect(event).toMatchObject({
        eventVersion: '1.0',
        eventSource: 'envelope-service',
        eventName: c.eventName,
        eventType: 'ApiCall',
        requestID: response.headers['x-request-id'],
        httpStatus: c.status,
        sourceIPAddress: expect.any(String),
        userIdentity: { type: c.auth === false ? 'anonymous' : 'dev-token', principalId: c.auth === false ? 'anonymous' : 'dev' },
      });
      expect(Date.parse(event.eventTime)).not.toBeNaN();
      expect(event.eventID).toMatch(/^[0-9a-f-]{36}$/);
      expect(Array.isArray(event.additionalEventData.kmsRequestIds)).toBe(true);
      if (c.status >= 400) {
        expect(event.errorCode).toEqual(expect.any(String));
        expect(event.responseElements).toBeNull();
        if (response.body.code) expect(event.errorCode).toBe(response.body.code);
      } else {
        expect(event.errorCode).toBeUndefined();
        if (c.eventName.endsWith('Batch')) {
          // One event per request; each item names the rule that allowed it.
          const items = event.additionalEventData.items as { index: number; ruleId?: string; errorCode?: string }[];
          expect(items.map((item) => item.index)).toEqual(c.body!().items.map((_: unknown, index: number) => index));
          expect(items.filter((item) => !item.errorCode).every((item) => item.ruleId === 'dev-all')).toBe(true);
        } else if (c.eventName !== 'ListKeys') {
          expect(event.userIdentity.ruleId).toBe('dev-all');
        }
      }
      if (c.status === 200 && ['Encrypt', 'Decrypt', 'GenerateDataKey', 'ReEncrypt'].includes(c.eventName)) {
        expect(event.additionalEventData.dataKeyId).toMatch(/^[0-9a-f]{32}$/);
        expect(event.additionalEventData.kmsRequestIds.length).toBeGreaterThan(0);
        expect(event.requestParameters.keyId).toEqual(expect.any(String));
      }
    });
  }

  it('the trail links a cache hit to the KMS request that produced its key', async () => {
    await request(t.app.server).post('/v1/encrypt').set(AUTH).send({ plaintext: 'aGk=', context: { link: 'x' } });
    await request(t.app.server).post('/v1/encrypt').set(AUTH).send({ plaintext: 'aGk=', context: { link: 'x' } });
    const [miss, hit] = t.auditEvents().slice(-2) as Event[];
    expect(miss!.additionalEventData.cacheHit).toBe(false);
    expect(hit!.additionalEventData.cacheHit).toBe(true);
    expect(hit!.additionalEventData.dataKeyId).toBe(miss!.additionalEventData.dataKeyId);
    // The GenerateDataKey id behind the hit is the miss's.
    const generateId = miss!.additionalEventData.kmsRequestIds.at(-1);
    expect(hit!.additionalEventData.kmsRequestIds).toContain(generateId);
  });

  it('concurrent requests (one audit write for the turn) each get their answer only once their event is in the log', async () => {
    const before = t.auditEvents().length;
    const loggedWhenAnswered: boolean[] = [];
    const responses = await Promise.all(
      Array.from({ length: 40 }, (_, index) =>
        request(t.app.server).post('/v1/encrypt').set(AUTH).send({ plaintext: 'aGk=', context: { n: String(index % 3) } }).then((response) => {
          const id = response.headers['x-request-id'];
          loggedWhenAnswered.push(t.auditEvents().some((event) => event.requestID === id));
          return response;
        }),
      ),
    );
    expect(responses.map((response) => response.status)).toEqual(Array.from({ length: 40 }, () => 200));
    expect(loggedWhenAnswered).toEqual(Array.from({ length: 40 }, () => true));
    const ids = new Set(responses.map((response) => response.headers['x-request-id']));
    const events = t.auditEvents().slice(before) as Event[];
    expect(events).toHaveLength(40);
    expect(new Set(events.map((event) => event.requestID))).toEqual(ids);
  });

  it("records the caller's user agent, a long one cut once, at 256 characters, with a visible mark", async () => {
    for (const agent of ['curl/8.5.0', 'x'.repeat(300)]) {
      const response = await request(t.app.server).get('/v1/keys').set(AUTH).set('user-agent', agent);
      const event = t.auditEvents().find((entry) => entry.requestID === response.headers['x-request-id']);
      expect(event?.userAgent).toBe(agent.length > 256 ? `${agent.slice(0, 256)}...` : agent);
    }
  });

  it('the whole log verifies as an intact chain', async () => {
    const result = await verifyAuditLog(t.auditPath);
    expect(result.ok).toBe(true);
  });
});

describe('no secret reaches any log', () => {
  it('a marker plaintext, aad and token sent through every endpoint appear in neither log', async () => {
    // The production logger configuration (its redaction backstop included), at trace level.
    const { logger, raw: lines } = captureAppLog();
    const MARKER = 'MARKER-PLAINTEXT-7d41c9';
    const TOKEN = 'MARKER-TOKEN-5be2a0f1';
    const AAD = 'MARKER-AAD-91f3';
    const t = await buildTestApp({ env: { DEV_TOKEN: TOKEN, LOG_LEVEL: 'trace' }, logger: logger as never });
    try {
      const auth = { authorization: `Bearer ${TOKEN}` };
      const plaintext = Buffer.from(MARKER).toString('base64');
      const aad = Buffer.from(AAD).toString('base64');
      const post = (path: string, body: object, headers: Record<string, string> = auth) => request(t.app.server).post(path).set(headers).send(body);
      const encrypted = await post('/v1/encrypt', { plaintext, aad, context: { tenant: 'a' } });
      expect(encrypted.status).toBe(200);
      const ciphertext = encrypted.body.ciphertext as string;
      await post('/v1/decrypt', { ciphertext, aad });
      await post('/v1/decrypt', { ciphertext }); // wrong aad: 422
      await post('/v1/encrypt/batch', { items: [{ plaintext, aad }, { plaintext: 'bad base64' }] });
      await post('/v1/decrypt/batch', { items: [{ ciphertext, aad }] });
      await post('/v1/rewrap', { ciphertext });
      const datakey = await post('/v1/datakey', { includePlaintext: true });
      await post('/v1/encrypt', { plaintext }, { authorization: `Bearer ${TOKEN}x` }); // 401
      await post('/v1/encrypt', { plaintext: `${plaintext}!` }); // 400
      await request(t.app.server).post('/v1/encrypt').set(auth).set('content-type', 'application/json').send(`{"plaintext":"${plaintext}"`); // bad JSON
      await request(t.app.server).get('/v1/keys').set(auth);

      const everything = [...lines, ...t.auditEvents().map((event) => JSON.stringify(event))].join('\n');
      expect(lines.length).toBeGreaterThan(10);
      for (const secret of [MARKER, plaintext, TOKEN, AAD, aad, ciphertext.slice(4, 60), datakey.body.plaintextKey, datakey.body.wrappedKey]) {
        expect(everything).not.toContain(secret);
      }
    } finally {
      await t.close();
    }
  });
});

describe('fail-closed: a sink that cannot be written', () => {
  let t: TestApp;
  let ciphertext: string;
  beforeAll(async () => {
    const healthy = await buildTestApp();
    ciphertext = (await request(healthy.app.server).post('/v1/encrypt').set(AUTH).send({ plaintext: 'c2VjcmV0' })).body.ciphertext;
    // Same keystore, audit log on /dev/full (every write fails with ENOSPC).
    t = await buildTestApp({ env: { LOCAL_KEYSTORE: `${healthy.dir}/keystore.json` }, auditDestination: '/dev/full' });
  });
  afterAll(async () => t?.close());

  it('encrypt answers 503 and no ciphertext', async () => {
    const response = await request(t.app.server).post('/v1/encrypt').set(AUTH).send({ plaintext: 'c2VjcmV0' });
    expect(response.status).toBe(503);
    expect(response.headers['retry-after']).toBeDefined();
    expect(response.body.code).toBe('AuditUnavailable');
    expect(JSON.stringify(response.body)).not.toContain('ev1:');
  });

  it('decrypt answers 503 and no plaintext', async () => {
    const response = await request(t.app.server).post('/v1/decrypt').set(AUTH).send({ ciphertext });
    expect(response.status).toBe(503);
    expect(JSON.stringify(response.body)).not.toContain('c2VjcmV0');
    expect(response.body.plaintext).toBeUndefined();
  });

  it('concurrent requests refused together: every one 503, none with a ciphertext', async () => {
    const responses = await Promise.all(
      Array.from({ length: 20 }, () => request(t.app.server).post('/v1/encrypt').set(AUTH).send({ plaintext: 'c2VjcmV0' })),
    );
    for (const response of responses) {
      expect(response.status).toBe(503);
      expect(response.body.code).toBe('AuditUnavailable');
      expect(response.text).not.toContain('ev1:');
    }
  });

  it('readiness reports the audit sink down, and failures are counted', async () => {
    const ready = await request(t.app.server).get('/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.checks.audit).toBe('unavailable');
    const metrics = await request(t.app.server).get('/metrics');
    expect(metrics.text).toMatch(/audit_write_failures_total [1-9]/);
  });
});
