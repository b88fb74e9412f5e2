/**
 * Signed checkpoints with the local provider's signing key: what they add to the hash chain.
 * Each tampering that the chain alone cannot see (a rewrite with recomputed hashes, a cut tail
 * that crossed a checkpoint, a forged or replayed checkpoint, another instance's key) must be
 * reported with the sequence where verification fails.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/audit/audit-log.js';
import { Checkpointer, readTrailingCheckpoint } from '../../src/audit/checkpointer.js';
import { isCheckpoint, localSigner, rechain, runVerify, writeSignedLog } from './checkpoint-helpers.js';
import { readLines, sampleInput, tempDir, writeLines } from './helpers.js';

describe('signed audit checkpoints (local signing key)', () => {
  it('writes a checkpoint every N events and at shutdown, and audit:verify reports them and the unsigned tail', async () => {
    const dir = tempDir();
    const { signer, publicKeyPath } = await localSigner(dir);
    const path = join(dir, 'audit.log');
    await writeSignedLog(path, { signer, events: 25, everyEvents: 10 });

    const lines = readLines(path);
    const checkpoints = lines.filter(isCheckpoint).map((line) => JSON.parse(line) as { sequence: number; serviceEventDetails: { statement: Record<string, unknown> } });
    expect(checkpoints.length).toBeGreaterThanOrEqual(3);
    const first = checkpoints[0]?.serviceEventDetails.statement;
    expect(first).toMatchObject({ instance: 'node-a', firstSequence: 0, lastSequence: 9, eventCount: 10, previousDigest: null, algorithm: 'ECDSA_SHA_256' });
    // The shutdown checkpoint covers everything before it: nothing is left unsigned.
    const last = checkpoints.at(-1);
    expect(last?.sequence).toBe(lines.length - 1);
    expect(last?.serviceEventDetails.statement.lastSequence).toBe(lines.length - 2);

    const ok = await runVerify([`--public-key=${publicKeyPath}`, path]);
    expect(ok.err).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/signed: \d+ checkpoint\(s\) of instance node-a verify/);
    expect(ok.out).toContain('unsigned tail: none');

    // Events after the last checkpoint are reported apart from the verified part.
    const log = AuditLog.open({ destination: path });
    await log.write(sampleInput());
    await log.write(sampleInput());
    await log.close();
    const withTail = await runVerify([`--public-key=${publicKeyPath}`, path]);
    expect(withTail.code).toBe(0);
    expect(withTail.out).toContain(`unsigned tail: 2 event(s), sequences ${lines.length - 1}..${lines.length + 1}`);
  });

  it('a file rewritten with recomputed hashes passes the chain check but fails at the signed head', async () => {
    const dir = tempDir();
    const { signer, publicKeyPath } = await localSigner(dir);
    const path = join(dir, 'audit.log');
    await writeSignedLog(path, { signer, events: 20, everyEvents: 10 });
    const lines = readLines(path);
    const victim = JSON.parse(lines[3] as string) as { userIdentity: { principalId: string } };
    victim.userIdentity.principalId = 'someone-else';
    lines[3] = JSON.stringify(victim);
    writeLines(path, rechain(lines));

    expect((await runVerify([path])).code).toBe(0); // the chain alone is fooled
    const result = await runVerify([`--public-key=${publicKeyPath}`, path]);
    expect(result.code).toBe(1);
    expect(result.err).toContain('FAIL: sequence 9:');
    expect(result.err).toContain('events 0..9 were rewritten');
  });

  it('a removed tail that crossed a checkpoint is caught with the shipped digest file', async () => {
    const dir = tempDir();
    const { signer, publicKeyPath } = await localSigner(dir);
    const path = join(dir, 'audit.log');
    const digests = join(dir, 'digests.jsonl');
    await writeSignedLog(path, { signer, events: 30, everyEvents: 10, digestFile: digests });
    const lines = readLines(path);
    const digestLines = readLines(digests);
    expect(digestLines.length).toBe(lines.filter(isCheckpoint).length);
    // Cut right before the second checkpoint: what remains is a valid prefix of the chain.
    const cut = lines.findIndex((line, index) => index > 12 && isCheckpoint(line));
    writeLines(path, lines.slice(0, cut));

    const alone = await runVerify([`--public-key=${publicKeyPath}`, path]);
    expect(alone.code).toBe(0);
    expect(alone.out).toMatch(/unsigned tail: \d+ event\(s\)/);
    const withDigests = await runVerify([`--public-key=${publicKeyPath}`, `--digests=${digests}`, path]);
    expect(withDigests.code).toBe(1);
    expect(withDigests.err).toMatch(/FAIL: sequence 10: the digest file holds the checkpoint at sequence \d+ \(covering 10\.\.\d+\), which is not in the log/);
  });

  it('a forged checkpoint (modified statement) and a replayed one are reported at their sequence', async () => {
    const dir = tempDir();
    const { signer, publicKeyPath } = await localSigner(dir);
    const path = join(dir, 'audit.log');
    await writeSignedLog(path, { signer, events: 20, everyEvents: 5 });
    const lines = readLines(path);
    const checkpointIndexes = lines.flatMap((line, index) => (isCheckpoint(line) ? [index] : []));

    const forged = [...lines];
    const target = checkpointIndexes[1] as number;
    const record = JSON.parse(forged[target] as string) as { serviceEventDetails: { statement: { endTime: string } } };
    record.serviceEventDetails.statement.endTime = '2020-01-01T00:00:00.000Z';
    forged[target] = JSON.stringify(record);
    writeLines(path, rechain(forged));
    const forgedResult = await runVerify([`--public-key=${publicKeyPath}`, path]);
    expect(forgedResult.code).toBe(1);
    expect(forgedResult.err).toContain(`FAIL: sequence ${target}: checkpoint at sequence ${target}`);
    expect(forgedResult.err).toContain('the signature does not verify');

    // Replay: the first checkpoint copied after the last events, to vouch for them.
    const replayed = [...lines.slice(0, -1), lines[checkpointIndexes[0] as number] as string];
    writeLines(path, rechain(replayed));
    const replayResult = await runVerify([`--public-key=${publicKeyPath}`, path]);
    expect(replayResult.code).toBe(1);
    expect(replayResult.err).toContain(`FAIL: sequence ${replayed.length - 1}: checkpoint at sequence ${replayed.length - 1}`);
    expect(replayResult.err).toContain('replayed');
  });

  it("a checkpoint signed with another instance's key, or naming another instance, is refused", async () => {
    const dir = tempDir();
    const mine = await localSigner(dir, 'mine.json');
    const theirs = await localSigner(dir, 'theirs.json');
    const path = join(dir, 'audit.log');
    await writeSignedLog(path, { signer: theirs.signer, events: 6, everyEvents: 5, instance: 'node-b' });
    const result = await runVerify([`--public-key=${mine.publicKeyPath}`, path]);
    expect(result.code).toBe(1);
    expect(result.err).toContain('FAIL: sequence 5: checkpoint at sequence 5');
    expect(result.err).toContain('signed with another key (it names instance node-b');

    const sameKey = await runVerify([`--public-key=${theirs.publicKeyPath}`, '--instance=node-a', path]);
    // Replicas share a key: a whole log of another instance is its own verdict (exit 4).
    expect(sameKey.code).toBe(4);
    expect(sameKey.err).toContain("this is instance node-b's log, not node-a's");
  });

  it('follows rotation: the checkpoint written into the new file covers the rotated one, verified across files', async () => {
    const dir = tempDir();
    const { signer, publicKeyPath } = await localSigner(dir);
    const path = join(dir, 'audit.log');
    let checkpointer: Checkpointer | undefined;
    const audit = AuditLog.open({
      destination: path,
      onWritten: () => checkpointer?.noteEvent(),
      onReopened: () => checkpointer?.noteRotation(),
    });
    checkpointer = new Checkpointer({ audit, signer, instance: 'node-a', everyEvents: 1_000, intervalMs: 3_600_000 });
    for (let index = 0; index < 4; index += 1) await audit.write(sampleInput());
    renameSync(path, `${path}.1`);
    expect(audit.reopen()).toBe('renamed');
    await new Promise((done) => setImmediate(done));
    await checkpointer.settled();
    await checkpointer.close(5_000);
    await audit.close();

    const rotated = readLines(`${path}.1`);
    const current = readLines(path);
    const rotationCheckpoint = current.map((line) => JSON.parse(line) as { eventName: string; serviceEventDetails: { statement: { lastSequence: number } } }).find((line) => line.eventName === 'AuditCheckpoint');
    // It vouches for the rotated file's last line (and the AuditLogReopened line after it).
    expect(rotationCheckpoint?.serviceEventDetails.statement.lastSequence).toBeGreaterThanOrEqual(rotated.length - 1);
    const result = await runVerify([`--public-key=${publicKeyPath}`, `${path}.1`, path]);
    expect(result.err).toBe('');
    expect(result.out).toContain('unsigned tail: none');
  });

  it("verifies several replicas' logs, each with its own chain, and refuses one replica's log passed off as another's", async () => {
    const dir = tempDir();
    const { signer, publicKeyPath } = await localSigner(dir);
    const a = join(dir, 'a.log');
    const b = join(dir, 'b.log');
    await writeSignedLog(a, { signer, events: 7, everyEvents: 5, instance: 'node-a' });
    await writeSignedLog(b, { signer, events: 9, everyEvents: 5, instance: 'node-b' });
    const ok = await runVerify([`--public-key=${publicKeyPath}`, `--replica=${a}`, `--replica=${b}`]);
    expect(ok.err).toBe('');
    expect(ok.out).toContain('instance node-a verify');
    expect(ok.out).toContain('instance node-b verify');

    writeFileSync(b, readFileSync(a));
    const copied = await runVerify([`--public-key=${publicKeyPath}`, `--replica=${a}`, `--replica=${b}`]);
    expect(copied.code).toBe(1);
    expect(copied.err).toContain('name the same instance node-a');
  });

  it('the documented openssl commands verify a checkpoint with the exported public key', async () => {
    const dir = tempDir();
    const { signer, publicKeyPath } = await localSigner(dir);
    const path = join(dir, 'audit.log');
    await writeSignedLog(path, { signer, events: 3, everyEvents: 100 });
    const commands = [
      'set -euo pipefail',
      `cd ${dir}`,
      `cp ${publicKeyPath} pub.pem`,
      // the commands of docs/AUDIT.md, verbatim
      "grep '\"eventName\":\"AuditCheckpoint\"' audit.log | tail -n 1 > checkpoint.json",
      "jq -cj '.serviceEventDetails.statement' checkpoint.json > statement.json",
      "jq -r '.serviceEventDetails.signature' checkpoint.json | base64 -d > signature.der",
    ];
    const verify = 'openssl dgst -sha256 -verify pub.pem -signature signature.der statement.json';
    expect(execFileSync('bash', ['-c', [...commands, verify].join('\n')], { encoding: 'utf8' })).toContain('Verified OK');
    // A changed statement fails the same command.
    const tampered = [...commands, "sed -i 's/node-a/node-x/' statement.json", `${verify} || echo REFUSED`];
    expect(execFileSync('bash', ['-c', tampered.join('\n')], { encoding: 'utf8' })).toContain('REFUSED');
  });
});

describe('checkpoint schedule and restarts', () => {
  it('writes a checkpoint every interval even when few events arrive', async () => {
    const dir = tempDir();
    const { signer } = await localSigner(dir);
    const path = join(dir, 'audit.log');
    const audit = AuditLog.open({ destination: path });
    const checkpointer = new Checkpointer({ audit, signer, instance: 'node-a', everyEvents: 10_000, intervalMs: 50 });
    checkpointer.start();
    await audit.write(sampleInput());
    await new Promise((done) => setTimeout(done, 200));
    await checkpointer.settled();
    const checkpoints = readLines(path).filter(isCheckpoint);
    // One, not one per tick: a checkpoint whose only new line is the previous checkpoint is skipped.
    expect(checkpoints).toHaveLength(1);
    await checkpointer.close(1_000);
    await audit.close();
    expect(readLines(path).filter(isCheckpoint)).toHaveLength(1);
  });

  it('a restart after a clean stop continues the series; after a crash the unsigned stretch is reported', async () => {
    const dir = tempDir();
    const { signer, publicKeyPath } = await localSigner(dir);
    const path = join(dir, 'audit.log');
    await writeSignedLog(path, { signer, events: 4, everyEvents: 100 });
    // Second process, as the composition root starts it: resumes from the checkpoint the file ends with.
    const resumeFrom = readTrailingCheckpoint(path);
    expect(resumeFrom).toBeDefined();
    let checkpointer: Checkpointer | undefined;
    const audit = AuditLog.open({ destination: path, onWritten: () => checkpointer?.noteEvent() });
    checkpointer = new Checkpointer({ audit, signer, instance: 'node-a', everyEvents: 100, intervalMs: 3_600_000, ...(resumeFrom && { resumeFrom }) });
    for (let index = 0; index < 3; index += 1) await audit.write(sampleInput());
    // A crash: no final checkpoint.
    await audit.close();
    const clean = await runVerify([`--public-key=${publicKeyPath}`, path]);
    expect(clean.code).toBe(0);
    expect(clean.out).not.toContain('WARNING');
    expect(clean.out).toContain('unsigned tail: 3 event(s)');

    // Third process: the file ends with events, not a checkpoint, so a new series starts.
    await writeSignedLog(path, { signer, events: 2, everyEvents: 100 });
    const afterCrash = await runVerify([`--public-key=${publicKeyPath}`, path]);
    expect(afterCrash.code).toBe(0);
    expect(afterCrash.out).toMatch(/WARNING: sequences 4\.\.7 are covered by no checkpoint/);
    expect(afterCrash.out).toContain('unsigned tail: none');
  });

  it('removing the first checkpoint of the files is reported', async () => {
    const dir = tempDir();
    const { signer, publicKeyPath } = await localSigner(dir);
    const path = join(dir, 'audit.log');
    await writeSignedLog(path, { signer, events: 12, everyEvents: 5 });
    const lines = readLines(path);
    const first = lines.findIndex(isCheckpoint);
    writeLines(path, rechain(lines.filter((_, index) => index !== first)));
    const result = await runVerify([`--public-key=${publicKeyPath}`, path]);
    expect(result.code).toBe(1);
    expect(result.err).toMatch(/FAIL: sequence \d+: checkpoint at sequence \d+/);
  });
});
