/**
 * Key sets (KEY_SETS_FILE): named sets of KMS keys, possibly in several regions and accounts,
 * one of them the generator. Callers name a set as `keyset/NAME` wherever they name a key; a
 * ciphertext written under a set carries the data key wrapped under every key of the set
 * (docs/FORMAT.md, "Key sets"), so any one of them can open it.
 *
 *   keySets:
 *     payments:
 *       keys: [arn:aws:kms:eu-west-1:111122223333:key/mrk-…, arn:aws:kms:eu-central-1:111122223333:key/mrk-…]
 *       generator: arn:aws:kms:eu-west-1:111122223333:key/mrk-…
 *       onGeneratorDown: fail      # or next
 *
 * Validated at start and on reload like the policy (bounded YAML parse, every error with its
 * line and column); a file that fails a reload keeps the sets in force. Like the policy store,
 * a request reads `current` once and keeps that snapshot.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { formatIssue, type PolicyIssue } from '../authz/errors.js';
import { PolicyError } from '../authz/errors.js';
import { parseYamlSource, type YamlSource } from '../authz/yaml-source.js';
import { KEY_SET_NAME } from '../format/format.js';
import { ENVELOPE_LIMITS } from '../format/limits.js';

/** How callers name a set where they would name a key; no KMS key id, alias or ARN starts so. */
export const KEY_SET_PREFIX = 'keyset/';

export type OnGeneratorDown = 'fail' | 'next';

export interface KeySet {
  readonly name: string;
  /** Key ARNs, generator first, then in the file's order. */
  readonly keys: readonly string[];
  readonly generator: string;
  readonly onGeneratorDown: OnGeneratorDown;
  /** Changes whenever the keys, the generator or the mode change: part of the encrypt cache partition. */
  readonly fingerprint: string;
}

export interface KeySetsSnapshot {
  readonly file?: string;
  readonly digest: string;
  readonly sets: ReadonlyMap<string, KeySet>;
  /** Every region a set's key lives in. */
  readonly regions: ReadonlySet<string>;
}

export class KeySetsError extends Error {
  override readonly name = 'KeySetsError';
  constructor(
    readonly file: string,
    readonly issues: readonly PolicyIssue[],
  ) {
    super(`invalid key sets file ${file}:\n${issues.map((issue) => `  ${formatIssue(file, issue)}`).join('\n')}`);
  }
}

/** `keyset/NAME` -> NAME; undefined for any other key name. */
export function keySetNameOf(keyId: string): string | undefined {
  return keyId.startsWith(KEY_SET_PREFIX) ? keyId.slice(KEY_SET_PREFIX.length) : undefined;
}

/** A KMS key ARN: `arn:<partition>:kms:<region>:<account>:key/<id>`. */
const KEY_ARN = /^arn:aws[a-z-]*:kms:([a-z]{2}(?:-[a-z]+)+-\d+|local):(\d{12}):key\/[A-Za-z0-9-]{1,128}$/;

/** The region of a KMS ARN (key or alias), or undefined when `arn` is not one. */
export function regionOfArn(arn: string): string | undefined {
  const parts = arn.split(':');
  if (parts.length < 6 || parts[0] !== 'arn' || parts[2] !== 'kms' || !parts[3]) return undefined;
  return parts[3];
}

interface Logger {
  info(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}
const silent: Logger = { info() {}, error() {} };

export class KeySets {
  #current: KeySetsSnapshot;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(
    snapshot: KeySetsSnapshot,
    private readonly logger: Logger,
  ) {
    this.#current = snapshot;
  }

  /** No file: no sets; `keyset/…` names are unknown keys. */
  static none(): KeySets {
    return new KeySets({ digest: 'none', sets: new Map(), regions: new Set() }, silent);
  }

  /** Loads and validates the file; throws KeySetsError (startup stops). */
  static async fromFile(file: string, options: { logger?: Logger } = {}): Promise<KeySets> {
    const snapshot = await loadKeySetsFile(file);
    const logger = options.logger ?? silent;
    logger.info({ keySetsFile: file, digest: snapshot.digest, keySets: snapshot.sets.size }, 'key sets loaded');
    return new KeySets(snapshot, logger);
  }

  /** From text already in hand (tests, tools). */
  static fromText(text: string, file = 'key-sets.yaml'): KeySets {
    return new KeySets(parseKeySets(text, file), silent);
  }

  get current(): KeySetsSnapshot {
    return this.#current;
  }

  get(name: string): KeySet | undefined {
    return this.#current.sets.get(name);
  }

  /** Re-reads the file; an invalid one keeps the sets in force. Never throws. */
  reload(): Promise<{ ok: true; changed: boolean } | { ok: false; error: string }> {
    const run = this.#queue.then(async () => {
      const previous = this.#current;
      if (previous.file === undefined) return { ok: true as const, changed: false };
      try {
        const next = await loadKeySetsFile(previous.file);
        this.#current = next;
        this.logger.info({ keySetsFile: previous.file, digest: next.digest, changed: next.digest !== previous.digest }, 'key sets reloaded');
        return { ok: true as const, changed: next.digest !== previous.digest };
      } catch (error) {
        const message = error instanceof KeySetsError ? error.issues.map((issue) => formatIssue(error.file, issue)).join('; ') : (error as Error).message;
        this.logger.error({ keySetsFile: previous.file, err: { message } }, 'key sets reload failed; keeping the previous sets');
        return { ok: false as const, error: message };
      }
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

async function loadKeySetsFile(file: string): Promise<KeySetsSnapshot> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new KeySetsError(file, [{ field: '', message: `cannot read: ${(error as NodeJS.ErrnoException).code ?? 'error'}` }]);
  }
  return { ...parseKeySets(text, file), file };
}

const SET_FIELDS = new Set(['keys', 'generator', 'onGeneratorDown']);

/** Validates the document; every problem found is reported at once, each with its place. */
export function parseKeySets(text: string, file: string): KeySetsSnapshot {
  let source: YamlSource;
  try {
    source = parseYamlSource(text, file);
  } catch (error) {
    if (error instanceof PolicyError) throw new KeySetsError(file, error.issues);
    throw error;
  }
  const issues: PolicyIssue[] = [];
  const sets = new Map<string, KeySet>();
  const root = source.data;
  if (!isRecord(root)) throw new KeySetsError(file, [source.issue([], 'expected a mapping with keySets')]);
  for (const field of Object.keys(root)) if (field !== 'keySets') issues.push(source.issue([field], `unknown field "${field}"`, 'key'));
  const declared = root.keySets;
  if (!isRecord(declared)) {
    issues.push(source.issue(['keySets'], 'keySets must be a mapping of set names to sets'));
    throw new KeySetsError(file, issues);
  }
  for (const [name, set] of Object.entries(declared)) {
    const at = ['keySets', name];
    if (!KEY_SET_NAME.test(name)) {
      issues.push(source.issue(at, 'a set name is 1 to 64 ASCII letters, digits, ".", "_" or "-", starting with a letter or digit', 'key'));
      continue;
    }
    if (!isRecord(set)) {
      issues.push(source.issue(at, 'a set is a mapping with keys, generator and onGeneratorDown'));
      continue;
    }
    for (const field of Object.keys(set)) if (!SET_FIELDS.has(field)) issues.push(source.issue([...at, field], `unknown field "${field}"`, 'key'));
    const before = issues.length;
    const keys = set.keys;
    if (!Array.isArray(keys) || keys.length === 0) {
      issues.push(source.issue([...at, 'keys'], 'keys must be a non-empty list of KMS key ARNs'));
      continue;
    }
    if (keys.length > ENVELOPE_LIMITS.maxWrappedKeys) issues.push(source.issue([...at, 'keys'], `a set has at most ${ENVELOPE_LIMITS.maxWrappedKeys} keys`));
    const seen = new Set<string>();
    keys.forEach((key: unknown, index) => {
      if (typeof key !== 'string' || !KEY_ARN.test(key)) {
        issues.push(source.issue([...at, 'keys', index], 'expected a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID); aliases are not accepted: a set must not change when an alias moves'));
      } else if (seen.has(key)) {
        issues.push(source.issue([...at, 'keys', index], 'this key is already in the set'));
      } else {
        seen.add(key);
      }
    });
    const generator = set.generator;
    if (typeof generator !== 'string' || !seen.has(generator)) {
      issues.push(source.issue([...at, 'generator'], 'generator must be one of the set\'s keys'));
    }
    const mode = set.onGeneratorDown ?? 'fail';
    if (mode !== 'fail' && mode !== 'next') issues.push(source.issue([...at, 'onGeneratorDown'], 'onGeneratorDown is fail or next'));
    if (issues.length > before) continue;
    const ordered = [generator as string, ...(keys as string[]).filter((key) => key !== generator)];
    const fingerprint = createHash('sha256').update(JSON.stringify([ordered, mode])).digest('hex').slice(0, 16);
    sets.set(name, { name, keys: ordered, generator: generator as string, onGeneratorDown: mode as OnGeneratorDown, fingerprint });
  }
  if (issues.length > 0) throw new KeySetsError(file, issues);
  const regions = new Set<string>();
  for (const set of sets.values()) for (const key of set.keys) regions.add(regionOfArn(key)!);
  return { digest: createHash('sha256').update(text).digest('hex'), sets, regions };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
