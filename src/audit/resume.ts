/**
 * Decides how a writer continues the chain of an existing file when it opens it.
 *
 * Healthy case: the last line is a complete event, so the next event gets its sequence + 1
 * and the hash of its bytes. Anything else (a partial line after a crash mid-write, a line
 * that is not an event) is never papered over: the writer starts a new segment whose first
 * event is `AuditChainResumed`, which records why and links, by hash, to the damaged line as
 * it stands. The verifier accepts exactly that shape as a resumption and reports it.
 */
import { GENESIS_HASH, hashLine, parseChainLine, type ChainLink } from './chain.js';
import type { ChainResumedDetails } from './event.js';
import { readTail } from './tail.js';

export const DEFAULT_TAIL_WINDOW_BYTES = 64 * 1024;
/** Upper bound on how far back we read; also the verifier's maximum line length. */
export const MAX_LINE_BYTES = 64 * 1024 * 1024;

export type ChainStart =
  | { kind: 'genesis'; link: ChainLink }
  | { kind: 'continue'; link: ChainLink }
  | {
      kind: 'resume';
      /** Link for the AuditChainResumed event itself. */
      link: ChainLink;
      details: ChainResumedDetails;
      /** The file does not end with a newline: write one before the next line. */
      terminatePartialLine: boolean;
    };

export const GENESIS: ChainStart = { kind: 'genesis', link: { sequence: 0, previousHash: GENESIS_HASH } };

export interface ResumeOptions {
  initialWindowBytes?: number;
  maxWindowBytes?: number;
}

export function resumeChain(fd: number, fileSize: number, options: ResumeOptions = {}): ChainStart {
  if (fileSize === 0) return GENESIS;
  const maxWindow = Math.max(1, options.maxWindowBytes ?? MAX_LINE_BYTES);
  // The window doubles until it holds what we need; usually the first 64 KiB read suffices.
  for (let window = Math.min(options.initialWindowBytes ?? DEFAULT_TAIL_WINDOW_BYTES, maxWindow); ; window = Math.min(window * 2, maxWindow)) {
    const tail = readTail(fd, fileSize, window);
    const wholeWindow = tail.reachedStart || window >= maxWindow;
    const last = tail.lines.at(-1);
    if (last === undefined) {
      if (wholeWindow) {
        return {
          kind: 'resume',
          // We cannot hash a line we refuse to read; the verifier will stop at it anyway.
          link: { sequence: 0, previousHash: GENESIS_HASH },
          details: { reason: 'last-line-too-long', lastLineHash: null, lastLineBytes: null, lastValidSequence: null },
          terminatePartialLine: !tail.terminated,
        };
      }
      continue;
    }

    const parsed = parseChainLine(last);
    if (parsed.ok && tail.terminated) {
      return { kind: 'continue', link: { sequence: parsed.fields.sequence + 1, previousHash: hashLine(last) } };
    }

    // Damaged last line. Its sequence (if it has one) or the last valid one before it
    // decides the resumed event's sequence, so numbering stays continuous.
    let lastValidSequence: number | null = parsed.ok ? parsed.fields.sequence : null;
    for (let index = tail.lines.length - 2; lastValidSequence === null && index >= 0; index -= 1) {
      const earlier = parseChainLine(tail.lines[index] as Buffer);
      if (earlier.ok) lastValidSequence = earlier.fields.sequence;
    }
    if (lastValidSequence === null && !wholeWindow) continue; // look further back

    const lastLineHash = hashLine(last);
    const reason: ChainResumedDetails['reason'] = !tail.terminated
      ? 'partial-last-line'
      : !parsed.ok && parsed.problem === 'unparseable'
        ? 'unparseable-last-line'
        : 'invalid-last-event';
    return {
      kind: 'resume',
      link: { sequence: lastValidSequence === null ? 0 : lastValidSequence + 1, previousHash: lastLineHash },
      details: { reason, lastLineHash, lastLineBytes: last.length, lastValidSequence },
      terminatePartialLine: !tail.terminated,
    };
  }
}
