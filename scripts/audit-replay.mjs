#!/usr/bin/env node
/**
 * Replays one fixed set of requests against a freshly started service and prints its audit
 * lines with what differs between runs masked (times, ids, hashes, key ids, signatures), one
 * JSON line per event, keys sorted. Two trees that audit the same way print the same lines:
 *
 *   git worktree add /tmp/before <rev>; (cd /tmp/before && npm ci)
 *   diff <(node scripts/audit-replay.mjs /tmp/before) <(node scripts/audit-replay.mjs .)
 *
 * TREE defaults to this checkout. The service runs from TREE (node --import tsx src/server.ts)
 * on a free loopback port with the embedded local provider, a throwaway keystore and audit log,
 * and the policy test/fixtures/policy/neighbours.yaml (allowed, denied and unauthenticated
 * callers). Loopback only; the request set is fixed and small. OTEL_* variables are passed to
 * the service: with tracing on, each event's trace ids are masked like the other ids.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const tree = resolve(process.argv[2] ?? '.');
const policy = resolve(tree, 'test/fixtures/policy/neighbours.yaml');
const work = mkdtempSync(join(tmpdir(), 'audit-replay-'));
const port = await new Promise((done) => {
  const probe = createServer().listen(0, '127.0.0.1', () => {
    const { port } = probe.address();
    probe.close(() => done(port));
  });
});
const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
  cwd: tree,
  env: {
    PATH: process.env.PATH,
    HOME: process.env.HOME ?? work,
    PORT: String(port),
    HOST: '127.0.0.1',
    KMS_PROVIDER: 'local',
    LOCAL_KEYSTORE: join(work, 'keystore.json'),
    AUDIT_LOG: join(work, 'audit.log'),
    POLICY_FILE: policy,
    LOG_LEVEL: 'warn',
    REFUSAL_HOLD_MAX_MS: '0',
    ...Object.fromEntries(Object.entries(process.env).filter(([name]) => name.startsWith('OTEL_'))),
  },
  stdio: ['ignore', 'ignore', 'inherit'],
});
const base = `http://127.0.0.1:${port}`;
const token = (name) => ({ authorization: `Bearer token-${name}` });
const json = (name, body) => ({ method: 'POST', headers: { ...token(name), 'content-type': 'application/json' }, body: JSON.stringify(body) });
const bytes = (name, body, headers = {}) => ({
  method: 'POST',
  headers: { ...token(name), 'content-type': 'application/octet-stream', ...headers },
  body,
});

try {
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/readyz`)).ok) break;
    } catch {}
    if (i > 300) throw new Error('the service did not become ready');
    await new Promise((r) => setTimeout(r, 100));
  }
  const call = async (path, init) => {
    const res = await fetch(base + path, init);
    const type = res.headers.get('content-type') ?? '';
    return type.includes('json') ? res.json() : Buffer.from(await res.arrayBuffer());
  };
  const ctx = { purpose: 'replay' };
  const { ciphertext } = await call('/v1/encrypt', json('billing', { plaintext: 'aGVsbG8=', context: ctx }));
  await call('/v1/encrypt', json('billing', { plaintext: 'aGVsbG8=', context: ctx })); // cache hit
  await call('/v1/decrypt', json('billing', { ciphertext, context: ctx }));
  await call('/v1/decrypt', json('billing', { ciphertext, context: { purpose: 'other' } })); // context mismatch
  await call('/v1/decrypt', json('billing', { ciphertext: `${ciphertext.slice(0, -4)}AAAA`, context: ctx })); // tampered
  await call('/v1/encrypt', json('billing', { plaintext: 'aGVsbG8=' })); // required context missing
  await call('/v1/encrypt', json('stranger', { plaintext: 'aGVsbG8=', keyId: 'alias/retired', context: ctx })); // not granted
  await call('/v1/encrypt', json('nobody', { plaintext: 'aGVsbG8=', context: ctx })); // no rule
  await call('/v1/encrypt', { ...json('billing', {}), headers: { 'content-type': 'application/json' } }); // no token
  await call('/v1/encrypt', json('wrong', { plaintext: 'aGVsbG8=' })); // bad token
  await call('/v1/encrypt/batch', json('billing', { items: [{ plaintext: 'YQ==', context: ctx }, { plaintext: '!', context: ctx }] }));
  await call('/v1/datakey', json('flooder', { context: ctx }));
  await call('/v1/rewrap', json('flooder', { ciphertext, keyId: 'alias/default', context: ctx }));
  const sealed = await call('/v1/encrypt/binary', bytes('billing', Buffer.from('binary payload'), { 'x-envelope-context': 'purpose=replay' }));
  await call('/v1/decrypt/binary', bytes('billing', sealed));
  const stream = await call('/v1/encrypt/stream', bytes('billing', Buffer.alloc(200_000, 7), { 'x-envelope-context': 'purpose=replay' }));
  await call('/v1/decrypt/stream', bytes('billing', stream));
  const cut = Buffer.from(stream.subarray(0, stream.length - 10));
  await call('/v1/decrypt/stream', bytes('billing', cut)).catch(() => undefined); // truncated: cut after the 200
  await call('/v1/keys', { headers: token('billing') });
  await call('/v1/admin/cache', { headers: token('billing') }); // no admin grant
} finally {
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
}

const MASKS = [
  [/"(eventTime|time|startedAt|endedAt|at)":"[^"]*"/g, '"$1":"<time>"'],
  [/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, '<time>'],
  [/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '<uuid>'],
  [/\b[0-9a-f]{64}\b/gi, '<sha256>'],
  [/"(signature|dataKeyId|sourceIPAddress|callerRequestId|requestId|requestID|eventID|hostname|pid|instance|traceId|spanId)":"[^"]*"/g, '"$1":"<id>"'],
  [/"(durationMs|responseTime|elapsedMs|seq|sequence)":[0-9.]+/g, '"$1":0'],
];
const sortKeys = (value) =>
  Array.isArray(value) ? value.map(sortKeys) : value && typeof value === 'object'
    ? Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys(value[k])]))
    : value;
const lines = readFileSync(join(work, 'audit.log'), 'utf8').split('\n').filter(Boolean);
for (const line of lines) {
  let text = JSON.stringify(sortKeys(JSON.parse(line)));
  for (const [pattern, replacement] of MASKS) text = text.replace(pattern, replacement);
  console.log(text);
}
rmSync(work, { recursive: true, force: true });
