/** Fixtures for the signed-checkpoint tests: a signed log written with real components, tampering helpers. */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuditLog } from '../../src/audit/audit-log.js';
import type { AuditSigner } from '../../src/audit/signer.js';
import { Checkpointer } from '../../src/audit/checkpointer.js';
import { main } from '../../src/cli/audit-verify.js';
import { LocalKeyProvider } from '../../src/kms/local.js';
import { LocalAuditSigner } from '../../src/audit/signer-local.js';
import { sampleInput } from './helpers.js';

/** A local keystore (created by the provider, as at first start) and its signing key. */
export async function localSigner(dir: string, name = 'keystore.json'): Promise<{ signer: LocalAuditSigner; publicKeyPath: string }> {
  const path = join(dir, name);
  await new LocalKeyProvider({ path }).close();
  const signer = LocalAuditSigner.open(path);
  const publicKeyPath = join(dir, `${name}.pub.pem`);
  writeFileSync(publicKeyPath, await signer.publicKey());
  return { signer, publicKeyPath };
}

export interface SignedLogOptions {
  signer: AuditSigner;
  events: number;
  everyEvents: number;
  instance?: string;
  digestFile?: string;
}

/** Writes `events` events with a checkpoint every `everyEvents`, then shuts down (final checkpoint). */
export async function writeSignedLog(path: string, options: SignedLogOptions): Promise<void> {
  let checkpointer: Checkpointer | undefined;
  const audit = AuditLog.open({ destination: path, onWritten: () => checkpointer?.noteEvent() });
  checkpointer = new Checkpointer({
    audit,
    signer: options.signer,
    instance: options.instance ?? 'node-a',
    everyEvents: options.everyEvents,
    intervalMs: 3_600_000,
    ...(options.digestFile !== undefined && { digestFile: options.digestFile }),
  });
  for (let index = 0; index < options.events; index += 1) {
    await audit.write(sampleInput({ requestID: `req-${index}` }));
    await checkpointer.settled();
  }
  await checkpointer.close(5_000);
  await audit.close();
}

/**
 * What an attacker with write access does after editing lines: renumbers and re-links every
 * line (recomputed previousHash), so the hash chain alone verifies again.
 */
export function rechain(lines: string[]): string[] {
  const out: string[] = [];
  for (const [index, line] of lines.entries()) {
    const record = JSON.parse(line) as Record<string, unknown>;
    record.sequence = index;
    record.previousHash = index === 0 ? '0'.repeat(64) : createHash('sha256').update(out[index - 1] as string).digest('hex');
    out.push(JSON.stringify(record));
  }
  return out;
}

export function isCheckpoint(line: string): boolean {
  return (JSON.parse(line) as { eventName: string }).eventName === 'AuditCheckpoint';
}

export async function runVerify(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (text) => (out += `${text}\n`), err: (text) => (err += `${text}\n`) });
  return { code, out, err };
}
