/**
 * Verifies an audit log file from the file alone: streams it line by line, recomputes each
 * line's SHA-256, and checks every line's previousHash and sequence against the line before.
 *
 * On the first break it looks up to two lines ahead (and one further back) to say what most
 * plausibly happened, naming the line that was tampered with rather than the first line
 * whose check failed. A modified line k, for instance, is only noticed at line k+1 (whose
 * previousHash no longer matches), but line k+2 still vouches for line k+1, so the verdict
 * is "line k was modified".
 *
 * Rotated files are verified as one log (verifyAuditLogs): given oldest first, each file's
 * first line must continue the previous file's last line, so a missing, cut or misordered
 * file shows as a break at the file boundary. When the oldest files are gone, `after` says
 * where the first given file must start (the head a previous verification printed).
 *
 * Limits: a hash chain without a key proves order and integrity relative to an anchor. Lines
 * removed from the end of the file, or a rewritten tail with recomputed hashes, cannot be
 * detected from the file alone; pass an anchor (a head published elsewhere) to catch them.
 */
import { GENESIS_HASH, hashLine, parseChainLine, type ChainFields, type ChainHead } from '../audit/chain.js';
import { LineTooLongError, readFileSet, readLines, type RawLine } from '../audit/lines.js';
import { MAX_LINE_BYTES } from '../audit/resume.js';

export type VerifyProblem =
  | 'modified'
  | 'deleted'
  | 'inserted'
  | 'reordered'
  | 'unparseable'
  | 'bad-start'
  | 'link-broken'
  | 'incomplete'
  | 'too-long'
  | 'resumed'
  | 'anchor-mismatch'
  | 'truncated'
  | 'gap';

export interface Resumption {
  /** Line of the AuditChainResumed event. */
  line: number;
  /** Its file, when several files are verified. */
  file?: string;
  /** The damaged (not an event) line it follows, if any. */
  damagedLine: number | null;
  reason: string;
}

export type VerifyResult =
  | {
      ok: true;
      events: number;
      head: ChainHead | null;
      resumptions: Resumption[];
      /** The head the first event continues, when the log does not start a chain (see `after`). */
      startsAfter?: ChainHead;
    }
  | {
      ok: false;
      line: number;
      /** The file of `line`, when several files are verified. */
      file?: string;
      problem: VerifyProblem;
      message: string;
      events: number;
      resumptions: Resumption[];
    };

export interface VerifyOptions {
  /** Treat an AuditChainResumed segment boundary as a failure. */
  strict?: boolean;
  /**
   * A (sequence, hash) published earlier (AuditLog.chainHead(), or a previous run's `head:`).
   * The event with that sequence must be present with that hash: this catches a truncated or
   * rewritten tail, which the file alone cannot reveal.
   */
  anchor?: ChainHead;
  /**
   * Where the first event must start when older files were removed: right after this head
   * (its sequence + 1, its hash as previousHash), e.g. the `head:` a verification of the
   * removed files printed. 'any' accepts any start and reports it. Default: a new chain
   * (sequence 0, previousHash of 64 zeros).
   */
  after?: ChainHead | 'any';
  maxLineBytes?: number;
}

interface Entry {
  line: number;
  /** Set when several files are verified. */
  file?: string;
  /** First line of a file other than the first: it must continue the previous file. */
  startsFile?: boolean;
  hash: string;
  terminated: boolean;
  /** Present when the line is a JSON object with valid chain fields. */
  fields?: ChainFields;
  /** Why it is not, otherwise. */
  problem?: string;
}

type EventEntry = Entry & { fields: ChainFields };

type Verdict = { line: number; file?: string; problem: VerifyProblem; message: string };

export async function verifyAuditLog(path: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  return verifyLines(readLines(path, options.maxLineBytes ?? MAX_LINE_BYTES), options);
}

/** Verifies rotated files as one log, given oldest first (e.g. audit.log.2 audit.log.1 audit.log). */
export async function verifyAuditLogs(paths: readonly string[], options: VerifyOptions = {}): Promise<VerifyResult> {
  if (paths.length === 1) return verifyAuditLog(paths[0] as string, options);
  return verifyLines(readFileSet(paths, options.maxLineBytes ?? MAX_LINE_BYTES), options);
}

export async function verifyLines(lines: AsyncIterable<RawLine>, options: VerifyOptions = {}): Promise<VerifyResult> {
  const iterator = lines[Symbol.asyncIterator]();
  const resumptions: Resumption[] = [];
  let events = 0;
  let beforePrevious: EventEntry | undefined;
  let previous: EventEntry | undefined;
  let last: Entry | undefined;
  /** An unparseable line, acceptable only if an AuditChainResumed event links to it next. */
  let damaged: Entry | undefined;

  const fail = (verdict: Verdict): VerifyResult => ({ ok: false, ...verdict, events, resumptions });
  const pull = async (): Promise<Entry | undefined> => {
    const next = await iterator.next();
    if (next.done) return undefined;
    const { number, bytes, terminated, file, startsFile } = next.value;
    const parsed = parseChainLine(bytes);
    const base = { line: number, hash: hashLine(bytes), terminated, ...(file !== undefined && { file }), ...(startsFile && { startsFile }) };
    return parsed.ok ? { ...base, fields: parsed.fields } : { ...base, problem: parsed.detail };
  };
  let anchorSeen = false;
  /** Records an event as verified; returns a verdict if it contradicts the anchor. */
  const accept = (entry: EventEntry): Verdict | undefined => {
    beforePrevious = previous;
    previous = entry;
    events += 1;
    const anchor = options.anchor;
    if (!anchor || anchorSeen || entry.fields.sequence !== anchor.sequence) return undefined;
    anchorSeen = true;
    if (entry.hash === anchor.hash) return undefined;
    return {
      ...position(entry),
      problem: 'anchor-mismatch',
      message: `${at(entry)} (sequence ${anchor.sequence}) does not have the anchored hash: the log was rewritten up to here`,
    };
  };
  let startsAfter: ChainHead | undefined;

  try {
    for (let entry = await pull(); entry; entry = await pull()) {
      if (entry.startsFile) {
        // A file ends here: it must end whole, and the next file must pick up where it ended.
        if (last && !last.terminated) return fail(incomplete(last));
        if (damaged) return fail(notAnEvent(damaged));
      }
      const previousLine = last;
      last = entry;
      if (isEvent(entry) && previous && previousLine === previous && entry.startsFile && !links(previous, entry)) {
        return fail(boundaryBreak(previous, entry));
      }
      if (!isEvent(entry)) {
        if (damaged) return fail(notAnEvent(damaged));
        damaged = entry;
        continue;
      }

      if (damaged) {
        // The writer's crash recovery: AuditChainResumed pointing at the damaged line's hash.
        if (!isResumed(entry) || entry.fields.previousHash !== damaged.hash) return fail(notAnEvent(damaged));
        const expected = previous ? previous.fields.sequence + 1 : 0;
        if (entry.fields.sequence !== expected) {
          return fail({
            ...position(entry),
            problem: 'reordered',
            message: `${at(entry)}: AuditChainResumed has sequence ${entry.fields.sequence}, expected ${expected}`,
          });
        }
        resumptions.push({ ...position(entry), damagedLine: damaged.line, reason: resumeReason(entry) });
        damaged = undefined;
        const anchorProblem = accept(entry);
        if (anchorProblem) return fail(anchorProblem);
        continue;
      }

      if (!previous) {
        const startProblem = checkStart(entry, options.after);
        if (startProblem) return fail(startProblem);
        if (options.after !== undefined) startsAfter = { sequence: entry.fields.sequence - 1, hash: entry.fields.previousHash };
      } else if (!links(previous, entry)) {
        const ahead = await pull();
        const further = ahead ? await pull() : undefined;
        return fail(classify(beforePrevious, previous, entry, ahead, further));
      }
      if (isResumed(entry)) resumptions.push({ ...position(entry), damagedLine: null, reason: resumeReason(entry) });
      const anchorProblem = accept(entry);
      if (anchorProblem) return fail(anchorProblem);
    }
  } catch (error) {
    if (error instanceof LineTooLongError) {
      const where = { line: error.lineNumber, ...(error.file !== undefined && { file: error.file }) };
      return fail({ ...where, problem: 'too-long', message: `${at(where)}: ${error.message}` });
    }
    throw error;
  }

  if (last && !last.terminated) return fail(incomplete(last));
  if (damaged) return fail(notAnEvent(damaged));
  if (options.anchor && !anchorSeen) {
    const lastSequence = previous ? String(previous.fields.sequence) : 'none';
    return fail({
      line: (last?.line ?? 0) + 1,
      ...(last?.file !== undefined && { file: last.file }),
      problem: 'truncated',
      message: `the anchored event (sequence ${options.anchor.sequence}) is not in the file (last sequence ${lastSequence}): the log was truncated`,
    });
  }

  const firstResumption = resumptions[0];
  if (options.strict && firstResumption) {
    return fail({ ...position(firstResumption), problem: 'resumed', message: describeResumption(firstResumption) });
  }
  const head = previous ? { sequence: previous.fields.sequence, hash: previous.hash } : null;
  return { ok: true, events, head, resumptions, ...(startsAfter && { startsAfter }) };
}

/** One-line summary first (`OK: ...` or `FAIL: ...`), then details. */
export function formatVerifyResult(result: VerifyResult): string {
  const warnings = result.resumptions.map((resumption) => `WARNING: ${describeResumption(resumption)}`);
  if (!result.ok) {
    return [`FAIL: ${result.message}`, `(events verified before the failure: ${result.events})`, ...warnings].join('\n');
  }
  const head = result.head ? [`head: sequence ${result.head.sequence}, sha256 ${result.head.hash}`] : [];
  const start = result.startsAfter
    ? [`start: continues sequence ${result.startsAfter.sequence}, sha256 ${result.startsAfter.hash}`]
    : [];
  return [`OK: ${result.events} events, chain intact`, ...head, ...start, ...warnings].join('\n');
}

function describeResumption(resumption: Resumption): string {
  const after = resumption.damagedLine === null ? '' : ` after damaged line ${resumption.damagedLine}`;
  return `${at(resumption)}: chain resumed${after} (${resumption.reason}); the service restarted after an interrupted write`;
}

/** "line 5", or "audit.log.1 line 5" when several files are verified. */
function at(where: { line: number; file?: string | undefined }): string {
  return where.file === undefined ? `line ${where.line}` : `${where.file} line ${where.line}`;
}

function position(where: { line: number; file?: string | undefined }): { line: number; file?: string } {
  return { line: where.line, ...(where.file !== undefined && { file: where.file }) };
}

function incomplete(entry: Entry): Verdict {
  const where = entry.file === undefined ? 'last line' : `last line of ${entry.file}`;
  return {
    ...position(entry),
    problem: 'incomplete',
    message:
      `${at(entry)}: incomplete ${where} (no trailing newline): a write was interrupted; ` +
      'the service records AuditChainResumed when it next opens the log',
  };
}

/** The first line of file B does not continue the last line of file A. */
function boundaryBreak(a: EventEntry, b: EventEntry): Verdict {
  const seqA = a.fields.sequence;
  const seqB = b.fields.sequence;
  const files = `${a.file ?? '?'} (last sequence ${seqA}) and ${b.file ?? '?'} (first sequence ${seqB})`;
  if (seqB === 0 && b.fields.previousHash === GENESIS_HASH) {
    return {
      ...position(b),
      problem: 'gap',
      message: `gap between ${files}: ${b.file ?? '?'} starts a new chain, so nothing proves that no events are missing between them (the service started on an empty file, or ${b.file ?? '?'} is not the next file)`,
    };
  }
  if (seqB > seqA + 1) {
    return {
      ...position(b),
      problem: 'gap',
      message: `gap between ${files}: ${seqB - seqA - 1} event(s) missing: a rotated file is missing or was cut short`,
    };
  }
  if (seqB <= seqA) {
    return {
      ...position(b),
      problem: 'reordered',
      message: `${b.file ?? '?'} does not follow ${a.file ?? '?'}: sequence ${seqB} after ${seqA}; give the files oldest first, each once`,
    };
  }
  return {
    ...position(b),
    problem: 'link-broken',
    message: `${at(b)} does not continue ${at(a)} (previousHash differs): ${at(a)} was modified, or ${b.file ?? '?'} is not the file that followed ${a.file ?? '?'}`,
  };
}

function isEvent(entry: Entry): entry is EventEntry {
  return entry.fields !== undefined;
}

function isResumed(entry: EventEntry): boolean {
  return entry.fields.eventName === 'AuditChainResumed';
}

function resumeReason(entry: EventEntry): string {
  const details = entry.fields.serviceEventDetails as { reason?: unknown } | undefined;
  return typeof details?.reason === 'string' ? details.reason : 'unknown reason';
}

/** `next` directly follows `previous`: it holds previous's hash and the next sequence number. */
function links(previous: Entry | undefined, next: Entry | undefined): boolean {
  if (!previous || !next || !isEvent(previous) || !isEvent(next)) return false;
  return next.fields.previousHash === previous.hash && next.fields.sequence === previous.fields.sequence + 1;
}

function notAnEvent(entry: Entry): Verdict {
  return {
    ...position(entry),
    problem: 'unparseable',
    message: `${at(entry)} is not a valid audit event (${entry.problem ?? 'unknown'}): modified or corrupted`,
  };
}

function checkStart(entry: EventEntry, after: VerifyOptions['after']): Verdict | undefined {
  const { sequence, previousHash } = entry.fields;
  if (after === 'any') return undefined;
  if (after !== undefined) {
    if (sequence === after.sequence + 1 && previousHash === after.hash) return undefined;
    return {
      ...position(entry),
      problem: 'bad-start',
      message:
        `${at(entry)} (sequence ${sequence}) does not continue the given head (sequence ${after.sequence}, sha256 ${after.hash.slice(0, 8)}...): ` +
        (sequence > after.sequence + 1 ? `${sequence - after.sequence - 1} event(s) missing before it` : 'the head belongs to another log, or the line was modified'),
    };
  }
  if (sequence !== 0) {
    return {
      ...position(entry),
      problem: 'bad-start',
      message: `${at(entry)}: the chain starts at sequence ${sequence}, not 0: ${sequence} event(s) deleted from the start of the file`,
    };
  }
  if (previousHash !== GENESIS_HASH) {
    return {
      ...position(entry),
      problem: 'bad-start',
      message: `${at(entry)}: sequence 0 must have previousHash ${GENESIS_HASH.slice(0, 8)}... (64 zeros): ${at(entry)} was modified`,
    };
  }
  return undefined;
}

/**
 * Explains a broken link between `a` (line j-1) and `b` (line j), using `before` (j-2) and
 * the next two lines `c` (j+1) and `d` (j+2) when they exist.
 */
function classify(before: EventEntry | undefined, a: EventEntry, b: EventEntry, c?: Entry, d?: Entry): Verdict {
  const seqA = a.fields.sequence;
  const seqB = b.fields.sequence;

  // b holds a's hash, so it was written right after a: only its sequence field can be wrong.
  if (b.fields.previousHash === a.hash) {
    return {
      ...position(b),
      problem: 'modified',
      message: `${at(b)} was modified: it follows ${at(a)} by hash but has sequence ${seqB}, expected ${seqA + 1}`,
    };
  }
  // b continues from the line before a: a (which linked fine) was slipped in.
  if (before && links(before, b)) {
    return {
      ...position(a),
      problem: 'inserted',
      message: `${at(a)} was inserted: ${at(b)} continues the chain from ${at(before)}`,
    };
  }
  // c continues from a: b does not belong here. Either b and c were swapped, or b was inserted.
  if (c && links(a, c)) {
    if (links(c, b) && (!d || links(b, d))) {
      const seqC = (c as EventEntry).fields.sequence; // links(a, c) implies c is an event
      return {
        ...position(b),
        problem: 'reordered',
        message: `${b.file === undefined ? 'lines' : `${b.file} lines`} ${b.line} and ${c.line} are swapped: sequence ${seqB} comes before ${seqC}`,
      };
    }
    return {
      ...position(b),
      problem: 'inserted',
      message: `${at(b)} was inserted: ${at(c)} continues the chain from ${at(a)}`,
    };
  }
  // c vouches for b, so b is authentic and the break is between a and b.
  if (c && links(b, c)) {
    if (seqB === seqA + 1) {
      return {
        ...position(a),
        problem: 'modified',
        message: `${at(a)} was modified: its hash no longer matches the previousHash recorded in ${at(b)}`,
      };
    }
    if (seqB > seqA + 1) return deleted(a, b);
    return outOfOrder(a, b);
  }
  // Nothing ahead to disambiguate: report the broken link itself.
  if (seqB > seqA + 1) return deleted(a, b);
  if (seqB <= seqA) return outOfOrder(a, b);
  if (!c) {
    return {
      ...position(b),
      problem: 'link-broken',
      message:
        `${at(b)}: previousHash does not match the hash of ${at(a)}: ${at(a)} was modified, ` +
        `or ${at(b)}'s previousHash was (no later line tells which)`,
    };
  }
  return {
    ...position(b),
    problem: 'modified',
    message: `${at(b)} was modified: it does not link to ${at(a)} and ${at(c)} does not link to it (or several lines were changed)`,
  };
}

function deleted(a: EventEntry, b: EventEntry): Verdict {
  const missing = b.fields.sequence - a.fields.sequence - 1;
  return {
    ...position(b),
    problem: 'deleted',
    message:
      `${missing} event(s) deleted before ${at(b)}: sequence jumps from ${a.fields.sequence} ` +
      `(${at(a)}) to ${b.fields.sequence}`,
  };
}

function outOfOrder(a: EventEntry, b: EventEntry): Verdict {
  return {
    ...position(b),
    problem: 'reordered',
    message: `${at(b)} is out of order: sequence ${b.fields.sequence} follows ${a.fields.sequence} (${at(a)})`,
  };
}
