/**
 * Case 6's flooder, A, in a process of its own (noisy-neighbour.ts starts it): its load
 * generator must not share an event loop with B's, whose latencies are the measurement.
 *
 * Reads FLOOD (JSON: url, durationSeconds, connections, maxRequests) from the environment,
 * encrypts one sample (to forge envelopes from), says { type: 'ready' } over IPC, floods, and
 * says { type: 'result', requests, byStatus }.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import autocannon from 'autocannon';
import { encodeRewrapped, parseCiphertext, toCiphertextString } from '../../src/format/format.js';
import { KiB, NEIGHBOUR_A_TOKEN } from '../lib/constants.js';
import { postJson } from '../lib/services.js';

export interface FloodSpec {
  url: string;
  durationSeconds: number;
  connections: number;
  maxRequests: number;
}

export type FlooderMessage = { type: 'ready' } | { type: 'result'; requests: number; byStatus: Record<string, number> };

const json = { 'content-type': 'application/json' };
const a = { ...json, authorization: `Bearer ${NEIGHBOUR_A_TOKEN}` };

async function main(): Promise<void> {
  const spec = JSON.parse(process.env.FLOOD ?? '') as FloodSpec;
  const plaintext = randomBytes(KiB).toString('base64');
  const sample = await postJson<{ ciphertext: string }>(`${spec.url}/v1/encrypt`, JSON.stringify({ plaintext, context: { tenant: 'a', purpose: 'seed' } }), a);
  const envelope = parseCiphertext(sample.ciphertext);
  // A valid header for A's own key and context, and A's wrapped key with its last 16 bytes (the
  // GCM tag) random: a KMS Decrypt each, answered InvalidCiphertextException. An all-random
  // wrapped key would crash local-kms's handler for a first byte of 250-255 (see
  // test/helpers/forged-envelope.ts), and A would get 503s real KMS never gives it.
  const forged = () => {
    const wrappedKey = Buffer.concat([envelope.wrappedKey.subarray(0, -16), randomBytes(16)]);
    return toCiphertextString(encodeRewrapped({ keyArn: envelope.keyArn, wrappedKey }, envelope.sealedPart));
  };
  send({ type: 'ready' });
  const result = await autocannon({
    url: spec.url,
    connections: spec.connections,
    duration: spec.durationSeconds,
    maxOverallRequests: spec.maxRequests,
    timeout: 10,
    // In turn on each connection: a new context (a cold partition), a forged envelope, no token.
    requests: [
      {
        method: 'POST',
        path: '/v1/encrypt',
        headers: a,
        setupRequest: (request) => ({ ...request, body: JSON.stringify({ plaintext, context: { tenant: 'a', purpose: randomUUID() } }) }),
      },
      { method: 'POST', path: '/v1/decrypt', headers: a, setupRequest: (request) => ({ ...request, body: JSON.stringify({ ciphertext: forged() }) }) },
      { method: 'POST', path: '/v1/encrypt', headers: json, body: JSON.stringify({ plaintext, context: { tenant: 'b', purpose: 'reports' } }) },
    ],
  });
  const byStatus: Record<string, number> = {};
  for (const [code, stat] of Object.entries(result.statusCodeStats)) byStatus[code] = stat.count;
  send({ type: 'result', requests: result.requests.total, byStatus });
}

function send(message: FlooderMessage): void {
  process.send?.(message);
}

main().then(
  () => process.disconnect?.(),
  (error: unknown) => {
    process.stderr.write(`flooder: ${(error as Error)?.stack ?? String(error)}\n`);
    process.exit(1);
  },
);
