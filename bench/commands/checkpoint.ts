/**
 * Cost of signed audit checkpoints per audited request, at the default schedule
 * (AUDIT_CHECKPOINT_EVERY_EVENTS=10000, AUDIT_CHECKPOINT_INTERVAL_MS=60000), local signer.
 *
 *   npm run bench:checkpoint -- [--events 200000] [--rounds 5]
 *
 * Writes the same events through AuditLog with and without a Checkpointer, in alternating
 * rounds (100 writes per event-loop turn, as under load), and prints the median µs per event
 * of each and their difference. Signing is off the request path either way: what a request
 * pays is the per-line counter plus its share of one checkpoint line every 10000 events.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AuditLog } from '../../src/audit/audit-log.js';
import { Checkpointer } from '../../src/audit/checkpointer.js';
import { LocalKeyProvider } from '../../src/kms/local.js';
import { LocalAuditSigner } from '../../src/audit/signer-local.js';
import { ENCRYPT_AUDIT_INPUT } from '../lib/audit-input.js';

const PER_TURN = 100;

export async function checkpoint(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { events: { type: 'string', default: '200000' }, rounds: { type: 'string', default: '5' } } });
  const events = Number(values.events);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(events) || events < PER_TURN || !Number.isInteger(rounds) || rounds < 1) {
    process.stderr.write('usage: bench checkpoint [--events N>=100] [--rounds N>=1]\n');
    return 2;
  }
  const dir = mkdtempSync(join(tmpdir(), 'bench-checkpoint-'));
  const keystore = join(dir, 'keystore.json');
  await new LocalKeyProvider({ path: keystore }).close();
  const signer = LocalAuditSigner.open(keystore);

  async function measure(withCheckpoints: boolean, round: number): Promise<number> {
    let checkpointer: Checkpointer | undefined;
    const audit = AuditLog.open({ destination: join(dir, `audit-${withCheckpoints}-${round}.log`), onWritten: () => checkpointer?.noteEvent() });
    if (withCheckpoints) {
      checkpointer = new Checkpointer({ audit, signer, instance: 'bench', everyEvents: 10_000, intervalMs: 60_000 });
      checkpointer.start();
    }
    const start = process.hrtime.bigint();
    for (let done = 0; done < events; done += PER_TURN) {
      const turn: Promise<void>[] = [];
      for (let index = 0; index < PER_TURN; index += 1) turn.push(audit.write(ENCRYPT_AUDIT_INPUT));
      await Promise.all(turn);
    }
    const elapsed = Number(process.hrtime.bigint() - start) / 1_000;
    await checkpointer?.close(5_000);
    await audit.close();
    return elapsed / events;
  }

  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;
  const without: number[] = [];
  const withCp: number[] = [];
  const differences: number[] = [];
  await measure(false, -1); // warm-up
  for (let round = 0; round < rounds; round += 1) {
    // Alternate which goes first, so drift on a shared machine hits both alike.
    const first = round % 2 === 0;
    const a = await measure(!first, round);
    const b = await measure(first, round);
    const plain = first ? a : b;
    const signed = first ? b : a;
    without.push(plain);
    withCp.push(signed);
    differences.push(signed - plain);
  }
  const signStart = process.hrtime.bigint();
  for (let index = 0; index < 100; index += 1) await signer.sign(Buffer.from(`statement ${index}`));
  const signUs = Number(process.hrtime.bigint() - signStart) / 1_000 / 100;
  console.log(`events per round: ${events}, rounds: ${rounds}`);
  console.log(`audit write without checkpoints: ${median(without).toFixed(3)} µs/event (median)`);
  console.log(`audit write with checkpoints:    ${median(withCp).toFixed(3)} µs/event (median)`);
  console.log(`difference: ${median(differences).toFixed(3)} µs/event (median of paired rounds, min ${Math.min(...differences).toFixed(3)}, max ${Math.max(...differences).toFixed(3)}); one local ECDSA signature: ${signUs.toFixed(1)} µs (${(signUs / 10_000).toFixed(4)} µs/event at one per 10000 events)`);
  rmSync(dir, { recursive: true, force: true });
  return 0;
}
