/**
 * The live policy, replaceable without a restart.
 *
 * A request takes ONE snapshot at its start (`store.current`) and uses it for authentication
 * and every authorization decision it makes (a batch included), so a reload mid-request can
 * never judge half a request by the old rules and half by the new. Swapping is a single
 * reference assignment — atomic in JavaScript — and only happens after the new file, and any
 * JWKS file it names, has been read, validated and compiled. A file that fails keeps the old
 * policy in force and the reason is logged and returned.
 *
 * Every reload's outcome reaches onReload() listeners: the app counts them as metrics
 * (policy_reloads_total, policy_last_reload_successful; see docs/OPERATIONS.md).
 *
 * Reload triggers: the server calls reload() on SIGHUP. There is deliberately no fs.watch:
 * editors save via rename, Kubernetes swaps ConfigMap symlinks, and watchers fire on
 * half-written files — an explicit signal after the file is complete is the reliable trigger
 * (`kill -HUP <pid>`, or a config-reloader sidecar in Kubernetes).
 */
import { createDevAuthenticator, type Authenticator } from './authenticator.js';
import { PolicyError, formatIssue, type PolicyIssue } from './errors.js';
import { loadPolicyFile, type LoadedPolicy } from './policy-load.js';
import { devPolicy, type Policy } from './policy.js';

/** The subset of pino's API the store uses. */
export interface PolicyLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface PolicySnapshot {
  readonly mode: 'file' | 'dev';
  /** The policy file path (file mode). */
  readonly file?: string;
  /** Hex SHA-256 of the policy file; 'dev' in dev mode. */
  readonly digest: string;
  readonly loadedAt: Date;
  readonly policy: Policy;
  readonly authenticator: Authenticator;
  /** Counts for log lines (file mode). */
  readonly summary?: LoadedPolicy['summary'];
}

export type ReloadResult =
  | { readonly ok: true; readonly changed: boolean; readonly digest: string }
  | { readonly ok: false; readonly error: string; readonly issues: readonly PolicyIssue[] };

/** The last reload attempt, for GET /v1/admin/policy. */
export type LastReload = ReloadResult & { readonly at: Date };

const silentLogger: PolicyLogger = { info() {}, warn() {}, error() {} };

export class PolicyStore {
  #current: PolicySnapshot;
  readonly #logger: PolicyLogger;
  /** Told of every reload attempt's outcome (metrics), after the swap or the refusal. */
  readonly #reloadListeners = new Set<(result: ReloadResult) => void>();
  /** Reloads run one at a time, in call order, so the last file read is the one in force. */
  #queue: Promise<unknown> = Promise.resolve();
  #lastReload: LastReload | undefined;

  private constructor(snapshot: PolicySnapshot, logger: PolicyLogger) {
    this.#current = snapshot;
    this.#logger = logger;
  }

  /** Loads the policy file; throws PolicyError when it is invalid (startup should stop). */
  static async fromFile(file: string, options: { logger?: PolicyLogger } = {}): Promise<PolicyStore> {
    const logger = options.logger ?? silentLogger;
    const snapshot = await loadSnapshot(file);
    logger.info({ policyFile: file, digest: snapshot.digest, ...summaryOf(snapshot) }, 'policy loaded');
    return new PolicyStore(snapshot, logger);
  }

  /** Dev mode: the dev token is the only credential and it may do everything. */
  static dev(devToken: string, options: { logger?: PolicyLogger } = {}): PolicyStore {
    const logger = options.logger ?? silentLogger;
    logger.warn({ mode: 'dev' }, 'no POLICY_FILE: dev-token authentication with ALL rights on every key; never use this in production');
    return new PolicyStore(
      { mode: 'dev', digest: 'dev', loadedAt: new Date(), policy: devPolicy(), authenticator: createDevAuthenticator(devToken) },
      logger,
    );
  }

  /** The snapshot a new request should use. Take it once per request. */
  get current(): PolicySnapshot {
    return this.#current;
  }

  /** The outcome of the last reload attempt (none yet: undefined). */
  get lastReload(): LastReload | undefined {
    return this.#lastReload;
  }

  /**
   * Calls `listener` with the outcome of every reload of the policy file (not in dev mode,
   * where there is nothing to reload). Returns a function that removes it.
   */
  onReload(listener: (result: ReloadResult) => void): () => void {
    this.#reloadListeners.add(listener);
    return () => this.#reloadListeners.delete(listener);
  }

  /**
   * Re-reads the policy file and swaps it in if valid. Never throws: an invalid file keeps the
   * current policy and the result (and an error log line) says why.
   */
  reload(): Promise<ReloadResult> {
    const run = this.#queue.then(() => this.#reloadNow());
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #reloadNow(): Promise<ReloadResult> {
    const previous = this.#current;
    if (previous.mode === 'dev' || previous.file === undefined) {
      this.#logger.info({ mode: 'dev' }, 'policy reload requested in dev mode: nothing to reload');
      return { ok: true, changed: false, digest: previous.digest };
    }
    const file = previous.file;
    try {
      const next = await loadSnapshot(file);
      this.#current = next;
      const changed = next.digest !== previous.digest;
      this.#logger.info(
        { policyFile: file, digest: next.digest, previousDigest: previous.digest, changed, ...summaryOf(next) },
        'policy reloaded',
      );
      return this.#reported({ ok: true, changed, digest: next.digest });
    } catch (error) {
      const message =
        error instanceof PolicyError
          ? error.issues.map((issue) => formatIssue(error.file, issue)).join('; ')
          : `unexpected error: ${(error as Error).message}`;
      this.#logger.error(
        { policyFile: file, digest: previous.digest, err: { message } },
        'policy reload failed; keeping the previous policy',
      );
      const issues = error instanceof PolicyError ? error.issues : [{ field: '', message: 'unexpected error' }];
      return this.#reported({ ok: false, error: message, issues });
    }
  }

  #reported(result: ReloadResult): ReloadResult {
    this.#lastReload = { ...result, at: new Date() };
    for (const listener of this.#reloadListeners) {
      try {
        listener(result);
      } catch {
        // A metrics hook must not turn a reload into a failure.
      }
    }
    return result;
  }
}

async function loadSnapshot(file: string): Promise<PolicySnapshot> {
  const loaded = await loadPolicyFile(file);
  return {
    mode: 'file',
    file,
    digest: loaded.digest,
    loadedAt: new Date(),
    policy: loaded.policy,
    authenticator: loaded.authenticator,
    summary: loaded.summary,
  };
}

function summaryOf(snapshot: PolicySnapshot): object {
  return snapshot.summary ?? {};
}
