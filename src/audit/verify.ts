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
 * Limits: a hash chain without a key proves order and integrity relative to an anchor. Lines
 * removed from the end of the file, or a rewritten tail with recomputed hashes, cannot be
 * detected from the file alone; pass an anchor (a head published elsewhere) to catch them.
 */
import { GENESIS_HASH, hashLine, parseChainLine, type ChainFields, type ChainHead } from './chain.js';
import { LineTooLongError, readLines, type RawLine } from './lines.js';
import { MAX_LINE_BYTES } from './resume.js';

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
  | 'truncated';

export interface Resumption {
  /** Line of the AuditChainResumed event. */
  line: number;
  /** The damaged (not an event) line it follows, if any. */
  damagedLine: number | null;
  reason: string;
}

export type VerifyResult =
  | { ok: true; events: number; head: ChainHead | null; resumptions: Resumption[] }
  | { ok: false; line: number; problem: VerifyProblem; message: string; events: number; resumptions: Resumption[] };

export interface VerifyOptions {
  /** Treat an AuditChainResumed segment boundary as a failure. */
  strict?: boolean;
  /**
   * A (sequence, hash) published earlier (AuditLog.chainHead(), or a previous run's `head:`).
   * The event with that sequence must be present with that hash: this catches a truncated or
   * rewritten tail, which the file alone cannot reveal.
   */
  anchor?: ChainHead;
  maxLineBytes?: number;
}

interface Entry {
  line: number;
  hash: string;
  terminated: boolean;
  /** Present when the line is a JSON object with valid chain fields. */
  fields?: ChainFields;
  /** Why it is not, otherwise. */
  problem?: string;
}

type EventEntry = Entry & { fields: ChainFields };

type Verdict = { line: number; problem: VerifyProblem; message: string };

export async function verifyAuditLog(path: string, options: VerifyOptions = {}): Promise<VerifyResult> {
  return verifyLines(readLines(path, options.maxLineBytes ?? MAX_LINE_BYTES), options);
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
    const { number, bytes, terminated } = next.value;
    const parsed = parseChainLine(bytes);
    const base = { line: number, hash: hashLine(bytes), terminated };
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
      line: entry.line,
      problem: 'anchor-mismatch',
      message: `line ${entry.line} (sequence ${anchor.sequence}) does not have the anchored hash: the log was rewritten up to here`,
    };
  };

  try {
    for (let entry = await pull(); entry; entry = await pull()) {
      last = entry;
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
            line: entry.line,
            problem: 'reordered',
            message: `line ${entry.line}: AuditChainResumed has sequence ${entry.fields.sequence}, expected ${expected}`,
          });
        }
        resumptions.push({ line: entry.line, damagedLine: damaged.line, reason: resumeReason(entry) });
        damaged = undefined;
        const anchorProblem = accept(entry);
        if (anchorProblem) return fail(anchorProblem);
        continue;
      }

      if (!previous) {
        const startProblem = checkStart(entry);
        if (startProblem) return fail(startProblem);
      } else if (!links(previous, entry)) {
        const ahead = await pull();
        const further = ahead ? await pull() : undefined;
        return fail(classify(beforePrevious, previous, entry, ahead, further));
      }
      if (isResumed(entry)) resumptions.push({ line: entry.line, damagedLine: null, reason: resumeReason(entry) });
      const anchorProblem = accept(entry);
      if (anchorProblem) return fail(anchorProblem);
    }
  } catch (error) {
    if (error instanceof LineTooLongError) {
      return fail({ line: error.lineNumber, problem: 'too-long', message: `line ${error.lineNumber}: ${error.message}` });
    }
    throw error;
  }

  if (last && !last.terminated) {
    return fail({
      line: last.line,
      problem: 'incomplete',
      message:
        `line ${last.line}: incomplete last line (no trailing newline): a write was interrupted; ` +
        'the service records AuditChainResumed when it next opens the log',
    });
  }
  if (damaged) return fail(notAnEvent(damaged));
  if (options.anchor && !anchorSeen) {
    const lastSequence = previous ? String(previous.fields.sequence) : 'none';
    return fail({
      line: (last?.line ?? 0) + 1,
      problem: 'truncated',
      message: `the anchored event (sequence ${options.anchor.sequence}) is not in the file (last sequence ${lastSequence}): the log was truncated`,
    });
  }

  const firstResumption = resumptions[0];
  if (options.strict && firstResumption) {
    return fail({ line: firstResumption.line, problem: 'resumed', message: describeResumption(firstResumption) });
  }
  const head = previous ? { sequence: previous.fields.sequence, hash: previous.hash } : null;
  return { ok: true, events, head, resumptions };
}

/** One-line summary first (`OK: ...` or `FAIL: ...`), then details. */
export function formatVerifyResult(result: VerifyResult): string {
  const warnings = result.resumptions.map((resumption) => `WARNING: ${describeResumption(resumption)}`);
  if (!result.ok) {
    return [`FAIL: ${result.message}`, `(events verified before the failure: ${result.events})`, ...warnings].join('\n');
  }
  const head = result.head ? [`head: sequence ${result.head.sequence}, sha256 ${result.head.hash}`] : [];
  return [`OK: ${result.events} events, chain intact`, ...head, ...warnings].join('\n');
}

function describeResumption(resumption: Resumption): string {
  const after = resumption.damagedLine === null ? '' : ` after damaged line ${resumption.damagedLine}`;
  return `line ${resumption.line}: chain resumed${after} (${resumption.reason}); the service restarted after an interrupted write`;
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
    line: entry.line,
    problem: 'unparseable',
    message: `line ${entry.line} is not a valid audit event (${entry.problem ?? 'unknown'}): modified or corrupted`,
  };
}

function checkStart(entry: EventEntry): Verdict | undefined {
  const { sequence, previousHash } = entry.fields;
  if (sequence !== 0) {
    return {
      line: entry.line,
      problem: 'bad-start',
      message: `line ${entry.line}: the chain starts at sequence ${sequence}, not 0: ${sequence} event(s) deleted from the start of the file`,
    };
  }
  if (previousHash !== GENESIS_HASH) {
    return {
      line: entry.line,
      problem: 'bad-start',
      message: `line ${entry.line}: sequence 0 must have previousHash ${GENESIS_HASH.slice(0, 8)}... (64 zeros): line ${entry.line} was modified`,
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
      line: b.line,
      problem: 'modified',
      message: `line ${b.line} was modified: it follows line ${a.line} by hash but has sequence ${seqB}, expected ${seqA + 1}`,
    };
  }
  // b continues from the line before a: a (which linked fine) was slipped in.
  if (before && links(before, b)) {
    return {
      line: a.line,
      problem: 'inserted',
      message: `line ${a.line} was inserted: line ${b.line} continues the chain from line ${before.line}`,
    };
  }
  // c continues from a: b does not belong here. Either b and c were swapped, or b was inserted.
  if (c && links(a, c)) {
    if (links(c, b) && (!d || links(b, d))) {
      const seqC = (c as EventEntry).fields.sequence; // links(a, c) implies c is an event
      return {
        line: b.line,
        problem: 'reordered',
        message: `lines ${b.line} and ${c.line} are swapped: sequence ${seqB} comes before ${seqC}`,
      };
    }
    return {
      line: b.line,
      problem: 'inserted',
      message: `line ${b.line} was inserted: line ${c.line} continues the chain from line ${a.line}`,
    };
  }
  // c vouches for b, so b is authentic and the break is between a and b.
  if (c && links(b, c)) {
    if (seqB === seqA + 1) {
      return {
        line: a.line,
        problem: 'modified',
        message: `line ${a.line} was modified: its hash no longer matches the previousHash recorded in line ${b.line}`,
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
      line: b.line,
      problem: 'link-broken',
      message:
        `line ${b.line}: previousHash does not match the hash of line ${a.line}: line ${a.line} was modified, ` +
        `or line ${b.line}'s previousHash was (no later line tells which)`,
    };
  }
  return {
    line: b.line,
    problem: 'modified',
    message: `line ${b.line} was modified: it does not link to line ${a.line} and line ${c.line} does not link to it (or several lines were changed)`,
  };
}

function deleted(a: EventEntry, b: EventEntry): Verdict {
  const missing = b.fields.sequence - a.fields.sequence - 1;
  return {
    line: b.line,
    problem: 'deleted',
    message:
      `${missing} event(s) deleted before line ${b.line}: sequence jumps from ${a.fields.sequence} ` +
      `(line ${a.line}) to ${b.fields.sequence}`,
  };
}

function outOfOrder(a: EventEntry, b: EventEntry): Verdict {
  return {
    line: b.line,
    problem: 'reordered',
    message: `line ${b.line} is out of order: sequence ${b.fields.sequence} follows ${a.fields.sequence} (line ${a.line})`,
  };
}
