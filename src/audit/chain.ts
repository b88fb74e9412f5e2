/**
 * The hash chain that makes the audit log tamper-evident.
 *
 * Each line carries `sequence` (0, 1, 2...) and `previousHash`, the SHA-256 of the previous
 * line's exact bytes as stored (UTF-8, without the trailing newline). We hash the bytes on
 * disk rather than a canonical re-serialization because then the verifier needs no JSON
 * canonicalization rules at all, any byte change is caught (even ones a canonicalizer would
 * normalize away), and the writer hashes the buffer it is about to write: no re-parse, one
 * SHA-256 per event.
 */
import { hash } from 'node:crypto';

/** previousHash of the first line of a chain. */
export const GENESIS_HASH = '0'.repeat(64);

const HASH_PATTERN = /^[0-9a-f]{64}$/;

export function hashLine(lineBytes: Uint8Array): string {
  // One-shot crypto.hash: a Hash object per line costs several times the digest itself.
  return hash('sha256', lineBytes, 'hex');
}

/** Where the next event goes: its sequence and the hash it must point back to. */
export interface ChainLink {
  sequence: number;
  previousHash: string;
}

/** The last line written: its sequence and hash. Ship it elsewhere to anchor the chain. */
export interface ChainHead {
  sequence: number;
  hash: string;
}

/** In-memory state of the writer's chain. AuditLog rewinds it when queued lines fail to be written. */
export class HashChain {
  private nextSequence: number;
  private lastHash: string;

  constructor(start: ChainLink) {
    this.nextSequence = start.sequence;
    this.lastHash = start.previousHash;
  }

  next(): ChainLink {
    return { sequence: this.nextSequence, previousHash: this.lastHash };
  }

  /** Records the line for next() (queued for writing); `lineBytes` excludes the newline. */
  advance(lineBytes: Uint8Array): void {
    this.lastHash = hashLine(lineBytes);
    this.nextSequence += 1;
  }

  /** Goes back to `link` (what next() returned before lines that were then not written). */
  rewind(link: ChainLink): void {
    this.nextSequence = link.sequence;
    this.lastHash = link.previousHash;
  }

  head(): ChainHead | null {
    return this.nextSequence === 0 ? null : { sequence: this.nextSequence - 1, hash: this.lastHash };
  }
}

/** The chain fields and name of a parsed line, as the tail reader and verifier need them. */
export interface ChainFields {
  sequence: number;
  previousHash: string;
  eventName: unknown;
  serviceEventDetails: unknown;
}

export type ParsedLine =
  | { ok: true; fields: ChainFields }
  | { ok: false; problem: 'unparseable' | 'invalid'; detail: string };

/** Parses one line and checks that it carries valid chain fields. */
export function parseChainLine(line: Buffer | string): ParsedLine {
  let value: unknown;
  try {
    value = JSON.parse(typeof line === 'string' ? line : line.toString('utf8'));
  } catch (error) {
    return { ok: false, problem: 'unparseable', detail: `not JSON (${(error as Error).message})` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, problem: 'invalid', detail: 'not a JSON object' };
  }
  const record = value as Record<string, unknown>;
  const { sequence, previousHash } = record;
  if (typeof sequence !== 'number' || !Number.isSafeInteger(sequence) || sequence < 0) {
    return { ok: false, problem: 'invalid', detail: 'missing or invalid "sequence"' };
  }
  if (typeof previousHash !== 'string' || !HASH_PATTERN.test(previousHash)) {
    return { ok: false, problem: 'invalid', detail: 'missing or invalid "previousHash"' };
  }
  return {
    ok: true,
    fields: { sequence, previousHash, eventName: record.eventName, serviceEventDetails: record.serviceEventDetails },
  };
}
