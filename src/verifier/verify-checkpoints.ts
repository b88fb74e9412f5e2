/**
 * Verifies the signed checkpoints of an audit log whose chain has already been verified
 * (verify.ts): every checkpoint's signature under the given public key, that it vouches for
 * the lines actually in the file (its head hash), that each continues the one before (range
 * and previousDigest) so together they cover the chain without gaps, that all belong to one
 * instance, and optionally that every checkpoint of a digest file is in the log (at least one
 * of them: a digest check that vouched for nothing is a failure, not a pass). What follows
 * the last checkpoint is the unsigned tail, reported apart from the verified part.
 *
 * Memory: the hash of each line after the last checkpoint is kept until a checkpoint covers
 * it, so it grows with the longest unsigned stretch, not with the file.
 */
import type { KeyObject } from 'node:crypto';
import { hashLine, parseChainLine } from '../audit/chain.js';
import {
  CHECKPOINT_EVENT_NAME,
  checkpointSignatureValid,
  parseCheckpointDetails,
  statementDigest,
  type CheckpointDetails,
} from '../audit/checkpoint.js';
import type { RawLine } from '../audit/lines.js';

export type CheckpointProblem =
  | 'bad-signature'
  | 'malformed'
  | 'rewritten'
  | 'replayed'
  | 'wrong-instance'
  | 'missing-checkpoint'
  | 'unsigned'
  /** An instance was expected (digest file or --instance) and the files hold no event. */
  | 'empty-log'
  /** The first checkpoint names another instance than the expected one: another replica's log. */
  | 'other-instance'
  /** None of the digest file's checkpoints of the instance is in the log: it vouched for nothing. */
  | 'no-digest-checkpoint';

export interface DigestRecord {
  /** Sequence of the checkpoint's line in the audit log. */
  sequence: number;
  details: CheckpointDetails;
}

export interface CheckpointVerifyOptions {
  publicKey: KeyObject;
  /** The instance every checkpoint must name; default: the first checkpoint's. */
  instance?: string;
  /** Without `instance`: the instances the first checkpoint may name (several replicas, one digest file). */
  instanceOneOf?: ReadonlySet<string>;
  /**
   * Checkpoints from AUDIT_DIGEST_FILE (shipped elsewhere): each of this instance must be in the
   * log, and at least one. Needs `instance` or `instanceOneOf`: replicas share the signing key,
   * so the instance must not come from the log being checked.
   */
  digests?: readonly DigestRecord[];
}

export interface UncoveredRange {
  firstSequence: number;
  lastSequence: number;
}

export type CheckpointVerifyResult =
  | {
      ok: true;
      checkpoints: number;
      instance: string | null;
      keyArns: string[];
      /** Last sequence vouched for by a signature; null if none. */
      signedThrough: number | null;
      /** Events after the last checkpoint (not vouched for yet), or null if none. */
      unsignedTail: { events: number; firstSequence: number; lastSequence: number } | null;
      /** Stretches no checkpoint covers between two series (a restart without a final checkpoint). */
      uncovered: UncoveredRange[];
    }
  | {
      ok: false;
      /** The sequence where verification fails. */
      sequence: number;
      line: number;
      file?: string;
      problem: CheckpointProblem;
      message: string;
      checkpoints: number;
    };

interface Accepted {
  sequence: number;
  lastSequence: number;
  digest: string;
}

export async function verifyCheckpoints(lines: AsyncIterable<RawLine>, options: CheckpointVerifyOptions): Promise<CheckpointVerifyResult> {
  if (options.digests !== undefined && options.instance === undefined && options.instanceOneOf === undefined) {
    throw new TypeError('verifyCheckpoints: digests need the expected instance (instance or instanceOneOf)');
  }
  const hashes = new Map<number, string>();
  const seenDigests = new Set<string>();
  const keyArns = new Set<string>();
  const uncovered: UncoveredRange[] = [];
  let instance = options.instance ?? null;
  let previous: Accepted | undefined;
  let checkpoints = 0;
  let walkStart: number | undefined;
  let lastSequence: number | undefined;
  let lastWhere: { line: number; file?: string } = { line: 0 };
  let tailEvents = 0;

  for await (const raw of lines) {
    const parsed = parseChainLine(raw.bytes);
    if (!parsed.ok) continue; // the chain verification has judged such lines already
    const { sequence } = parsed.fields;
    const where = { line: raw.number, ...(raw.file !== undefined && { file: raw.file }) };
    lastWhere = where;
    walkStart ??= sequence;
    lastSequence = sequence;
    const hash = hashLine(raw.bytes);
    const fail = (problem: CheckpointProblem, at: number, message: string): CheckpointVerifyResult => ({
      ok: false,
      sequence: at,
      ...where,
      problem,
      message,
      checkpoints,
    });

    if (parsed.fields.eventName !== CHECKPOINT_EVENT_NAME) {
      hashes.set(sequence, hash);
      tailEvents += 1;
      continue;
    }
    const details = parseCheckpointDetails(parsed.fields.serviceEventDetails);
    const label = `checkpoint at sequence ${sequence} (${at(where)})`;
    if (typeof details === 'string') return fail('malformed', sequence, `${label} is malformed (${details}): forged or modified`);
    const s = details.statement;
    if (!checkpointSignatureValid(details, options.publicKey)) {
      return fail(
        'bad-signature',
        sequence,
        `${label}: the signature does not verify with the given public key: the checkpoint was forged or modified, ` +
          `or signed with another key (it names instance ${s.instance}, key ${details.keyArn})`,
      );
    }
    if (previous === undefined && s.instance !== (instance ?? s.instance)) {
      return fail('other-instance', sequence, `this is instance ${s.instance}'s log, not ${instance}'s (${label} names ${s.instance})`);
    }
    if (instance === null && options.instanceOneOf !== undefined && !options.instanceOneOf.has(s.instance)) {
      return fail('other-instance', sequence, `this is instance ${s.instance}'s log, which has no checkpoint in the digest file (${label})`);
    }
    instance ??= s.instance;
    if (s.instance !== instance) {
      return fail('wrong-instance', sequence, `${label} belongs to instance ${s.instance}, not ${instance}: copied from another instance's log`);
    }
    if (s.lastSequence >= sequence) {
      return fail('replayed', sequence, `${label} claims to cover sequences up to ${s.lastSequence}, which come after it: replayed from elsewhere`);
    }
    const digest = statementDigest(s);
    if (previous) {
      if (s.previousDigest === previous.digest) {
        if (s.firstSequence !== previous.lastSequence + 1) {
          return fail('replayed', sequence, `${label} covers from ${s.firstSequence}, but the previous checkpoint ended at ${previous.lastSequence}: replayed or misplaced`);
        }
      } else if (s.previousDigest === null && s.firstSequence > previous.lastSequence) {
        if (s.firstSequence > previous.lastSequence + 1) uncovered.push({ firstSequence: previous.lastSequence + 1, lastSequence: s.firstSequence - 1 });
      } else {
        return fail(
          'replayed',
          sequence,
          `${label} does not continue the checkpoint at sequence ${previous.sequence}: a checkpoint between them was removed, or this one was replayed from elsewhere`,
        );
      }
    } else if (walkStart !== undefined && s.firstSequence > walkStart) {
      // The lines before it must have been covered by a checkpoint after them, so in these files.
      if (s.previousDigest !== null) {
        return fail(
          'replayed',
          sequence,
          `${label} continues a checkpoint that is not in the files, yet events ${walkStart}..${s.firstSequence - 1} come before it: a checkpoint was removed, or this one was replayed`,
        );
      }
      uncovered.push({ firstSequence: walkStart, lastSequence: s.firstSequence - 1 });
    }
    const actual = hashes.get(s.lastSequence);
    if (actual === undefined && s.lastSequence >= (walkStart ?? 0)) {
      return fail('replayed', s.lastSequence, `${label} vouches for sequence ${s.lastSequence}, which is not an event of this log before it: replayed from elsewhere`);
    }
    if (actual !== undefined && actual !== s.headHash) {
      return fail(
        'rewritten',
        s.lastSequence,
        `${label}: the event with sequence ${s.lastSequence} does not have the signed hash: events ${s.firstSequence}..${s.lastSequence} were rewritten (hashes recomputed)`,
      );
    }
    for (const key of hashes.keys()) if (key <= s.lastSequence) hashes.delete(key);
    // Lines after the covered head (this checkpoint's own line excepted) are still unsigned.
    tailEvents = hashes.size;
    hashes.set(sequence, hash);
    previous = { sequence, lastSequence: s.lastSequence, digest };
    seenDigests.add(digest);
    keyArns.add(details.keyArn);
    checkpoints += 1;
  }

  const expectsInstance = options.instance !== undefined || options.digests !== undefined;
  if (expectsInstance && lastSequence === undefined) {
    const whose = instance ?? [...(options.instanceOneOf ?? [])].join(' or ');
    return { ok: false, sequence: 0, line: 0, problem: 'empty-log', message: `the log holds no event: nothing in it is instance ${whose}'s`, checkpoints };
  }
  let digestsOfInstance = 0;
  let digestsInLog = 0;
  for (const record of options.digests ?? []) {
    const s = record.details.statement;
    if (instance === null || s.instance !== instance) continue;
    digestsOfInstance += 1;
    if (!checkpointSignatureValid(record.details, options.publicKey)) {
      return {
        ok: false,
        sequence: record.sequence,
        line: 0,
        problem: 'bad-signature',
        message: `the digest file's checkpoint at sequence ${record.sequence} does not verify with the given public key: the digest file was modified`,
        checkpoints,
      };
    }
    const inLog = seenDigests.has(statementDigest(s));
    if (inLog) digestsInLog += 1;
    if (walkStart !== undefined && s.firstSequence < walkStart) continue; // covers files not given
    if (!inLog) {
      return {
        ok: false,
        sequence: s.firstSequence,
        ...lastWhere,
        problem: 'missing-checkpoint',
        message:
          `the digest file holds the checkpoint at sequence ${record.sequence} (covering ${s.firstSequence}..${s.lastSequence}), ` +
          `which is not in the log (last sequence ${lastSequence ?? 'none'}): the log was truncated or rewritten from sequence ${s.firstSequence}`,
        checkpoints,
      };
    }
  }

  if (lastSequence !== undefined && checkpoints === 0) {
    return {
      ok: false,
      sequence: walkStart ?? 0,
      ...lastWhere,
      problem: 'unsigned',
      message: `no signed checkpoint in the log (sequences ${walkStart ?? 0}..${lastSequence}): nothing in it is vouched for`,
      checkpoints,
    };
  }
  if (options.digests !== undefined && digestsInLog === 0) {
    return {
      ok: false,
      sequence: walkStart ?? 0,
      ...lastWhere,
      problem: 'no-digest-checkpoint',
      message:
        `none of the digest file's ${digestsOfInstance} checkpoint(s) of instance ${instance ?? '?'} is in the log (sequences ${walkStart ?? 0}..${lastSequence ?? 0}): ` +
        'the digest file vouches for nothing in it (another period or another log)',
      checkpoints,
    };
  }
  const signedThrough = previous ? previous.lastSequence : null;
  const unsignedTail =
    previous && tailEvents > 0 && lastSequence !== undefined
      ? { events: tailEvents, firstSequence: previous.lastSequence + 1, lastSequence }
      : null;
  return { ok: true, checkpoints, instance, keyArns: [...keyArns], signedThrough, unsignedTail, uncovered };
}

/** Lines of AUDIT_DIGEST_FILE -> records; throws on a line that is not one. */
export function parseDigestFile(text: string): DigestRecord[] {
  const records: DigestRecord[] = [];
  for (const [index, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    let value: Record<string, unknown>;
    try {
      value = JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new Error(`digest file line ${index + 1} is not JSON`);
    }
    const details = parseCheckpointDetails(value);
    if (typeof details === 'string' || typeof value.sequence !== 'number') {
      throw new Error(`digest file line ${index + 1} is not a checkpoint (${typeof details === 'string' ? details : 'no sequence'})`);
    }
    records.push({ sequence: value.sequence, details });
  }
  return records;
}

/** The instances the digest file's checkpoints name, in order of appearance. */
export function digestInstances(records: readonly DigestRecord[]): string[] {
  return [...new Set(records.map((record) => record.details.statement.instance))];
}

/** Problems about which log was given rather than what was done to it (their own exit codes). */
const WHOLE_LOG_PROBLEMS: ReadonlySet<CheckpointProblem> = new Set(['empty-log', 'no-digest-checkpoint']);

export function formatCheckpointResult(result: CheckpointVerifyResult): string {
  if (!result.ok) return WHOLE_LOG_PROBLEMS.has(result.problem) ? `FAIL: ${result.message}` : `FAIL: sequence ${result.sequence}: ${result.message}`;
  const lines = [
    `signed: ${result.checkpoints} checkpoint(s) of instance ${result.instance ?? '?'} verify (key ${result.keyArns.join(', ')}), covering the chain through sequence ${result.signedThrough ?? 'none'}`,
  ];
  for (const gap of result.uncovered) {
    lines.push(`WARNING: sequences ${gap.firstSequence}..${gap.lastSequence} are covered by no checkpoint (the service stopped without a final checkpoint, or checkpoints started later)`);
  }
  lines.push(
    result.unsignedTail
      ? `unsigned tail: ${result.unsignedTail.events} event(s), sequences ${result.unsignedTail.firstSequence}..${result.unsignedTail.lastSequence}, not yet covered by a signed checkpoint (chain-verified only)`
      : 'unsigned tail: none',
  );
  return lines.join('\n');
}

function at(where: { line: number; file?: string }): string {
  return where.file === undefined ? `line ${where.line}` : `${where.file} line ${where.line}`;
}
