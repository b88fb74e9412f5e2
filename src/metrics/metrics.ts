/**
 * Prometheus metrics, one registry per app instance (tests build many apps in one process).
 * The names are part of the product's contract: dashboards and alerts depend on them
 * (docs/OPERATIONS.md says what each means and what to alert on).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CacheKind, CacheObserver, EvictionReason } from '../keys/data-key-cache.js';

/** What the policy gauges show of the policy in force (a PolicySnapshot has both). */
export interface LoadedPolicyInfo {
  readonly digest: string;
  readonly loadedAt: Date;
}

export class ServiceMetrics implements CacheObserver {
  readonly registry = new Registry();

  readonly kmsRequests = new Counter({
    name: 'kms_requests_total',
    help: 'KMS calls made, by operation and outcome (ok or the error code).',
    labelNames: ['operation', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly kmsDuration = new Histogram({
    name: 'kms_request_duration_seconds',
    help: 'Latency of KMS calls, retries included.',
    labelNames: ['operation'] as const,
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  readonly kmsCircuitState = new Gauge({
    name: 'kms_circuit_state',
    help: 'KMS circuit breaker: 0 closed (calls go to KMS), 1 open (calls fail fast with 503), 2 half-open (one probe call allowed).',
    registers: [this.registry],
  });

  readonly kmsCircuitRejections = new Counter({
    name: 'kms_circuit_rejections_total',
    help: 'KMS calls refused by the open circuit breaker without reaching KMS (not counted in kms_requests_total).',
    labelNames: ['operation'] as const,
    registers: [this.registry],
  });

  readonly kmsBudgetRejections = new Counter({
    name: 'kms_budget_rejections_total',
    help: 'KMS calls refused because the calling principal spent its KMS call budget (429 KmsBudgetExceeded); not sent to KMS. The principal is in the audit event, not in a label.',
    labelNames: ['operation'] as const,
    registers: [this.registry],
  });

  readonly kmsRegionRequests = new Counter({
    name: 'kms_region_requests_total',
    help: 'KMS calls made, by region (of the key named), operation and outcome; the same calls as kms_requests_total.',
    labelNames: ['region', 'operation', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly kmsRegionCircuitState = new Gauge({
    name: 'kms_region_circuit_state',
    help: 'Circuit breaker of each region with a KMS client: 0 closed, 1 open (fails fast), 2 half-open.',
    labelNames: ['region'] as const,
    registers: [this.registry],
  });

  readonly keySetUnwraps = new Counter({
    name: 'keyset_unwraps_total',
    help: 'Key-set data keys unwrapped by KMS (decrypt, rewrap), by set and the region that answered; failover="true" when a key tried before it failed.',
    labelNames: ['key_set', 'region', 'failover'] as const,
    registers: [this.registry],
  });

  readonly keySetDataKeys = new Counter({
    name: 'keyset_data_keys_total',
    help: 'Data keys made for a key set, by set and the region that generated them; complete="false" when some keys of the set could not wrap it (onGeneratorDown: next).',
    labelNames: ['key_set', 'region', 'complete'] as const,
    registers: [this.registry],
  });

  /** Each region's breaker state, read at scrape time. */
  regionCircuitStates: () => Array<[string, number]> = () => [];

  /** KMS calls waiting for their principal's turn; read at scrape time. */
  kmsCallsQueuedNow: () => number = () => 0;

  readonly kmsCallsQueued = this.gaugeReadAtScrape(
    'kms_calls_queued',
    'KMS calls waiting because their principal already has KMS_CONCURRENCY_PER_PRINCIPAL calls in flight, or for its KMS_PACE_PER_SECOND (key look-ups: KMS_LOOKUP_CONCURRENCY, KMS_LOOKUP_PACE_PER_SECOND).',
    () => this.kmsCallsQueuedNow(),
  );

  readonly cacheHits = new Counter({
    name: 'datakey_cache_hits_total',
    help: 'Requests served by a cached (or coalesced in-flight) data key: no KMS call of their own.',
    labelNames: ['cache'] as const,
    registers: [this.registry],
  });

  readonly cacheMisses = new Counter({
    name: 'datakey_cache_misses_total',
    help: 'Requests that caused a KMS call for their data key.',
    labelNames: ['cache'] as const,
    registers: [this.registry],
  });

  readonly cacheEvictions = new Counter({
    name: 'datakey_cache_evictions_total',
    help: 'Data keys removed (and zeroed), by reason: age, messages, bytes or capacity.',
    labelNames: ['cache', 'reason'] as const,
    registers: [this.registry],
  });

  readonly cacheEntries = new Gauge({
    name: 'datakey_cache_entries',
    help: 'Data keys currently held in memory.',
    labelNames: ['cache'] as const,
    registers: [this.registry],
  });

  readonly httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route and status code.',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly streamOutcomes = new Counter({
    name: 'stream_outcomes_total',
    help: 'Streams that got their 200 on /v1/encrypt/stream and /v1/decrypt/stream, by how they ended: completed, aborted-by-client, timeout (STREAM_IDLE_TIMEOUT_MS), authentication-failed (a segment), too-large, spool-quota, failed.',
    labelNames: ['route', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly streamSpooledBytes = new Counter({
    name: 'stream_spooled_bytes_total',
    help: 'Ciphertext bytes the streaming routes wrote to their spool files because the client was not reading its answer while sending (half-duplex clients).',
    registers: [this.registry],
  });

  /** Bytes in the streams' spool files now; read at scrape time. */
  streamSpoolBytesNow: () => number = () => 0;

  readonly streamSpoolBytes = this.gaugeReadAtScrape('stream_spool_bytes', 'Bytes in the streaming routes\' spool files right now (bounded by STREAM_SPOOL_MAX_BYTES).', () => this.streamSpoolBytesNow());

  /** Lines the app log has dropped behind a stalled stdout (src/app-log-drops.ts); read at scrape time. */
  appLogDroppedNow: () => number = () => 0;

  readonly appLogDroppedLines: Counter = new Counter({
    name: 'app_log_dropped_lines_total',
    help: 'Application log lines dropped because stdout did not keep up (the queue reached LOG_BUFFER_MAX_BYTES). The audit log is separate and never drops.',
    registers: [this.registry],
    collect: () => {
      this.appLogDroppedLines.reset();
      this.appLogDroppedLines.inc(this.appLogDroppedNow());
    },
  });

  readonly auditEvents = new Counter({
    name: 'audit_events_total',
    help: 'Audit events written.',
    registers: [this.registry],
  });

  readonly auditFailures = new Counter({
    name: 'audit_write_failures_total',
    help: 'Audit events that could not be written (each one failed its request closed with 503).',
    registers: [this.registry],
  });

  /** Set by the checkpointer when one is written; the age gauge is computed from it. */
  auditCheckpointSignedAt: number | null = null;

  readonly auditCheckpointAge = new Gauge({
    name: 'audit_checkpoint_age_seconds',
    help: 'Seconds since the last signed audit checkpoint was written (since start while none has been). Alert when it exceeds a few checkpoint intervals.',
    registers: [this.registry],
    collect: () => {
      const since = this.auditCheckpointSignedAt ?? this.startedAt;
      this.auditCheckpointAge.set((Date.now() - since) / 1000);
    },
  });

  /** Since when the oldest event not yet covered by a signed checkpoint has waited (epoch ms), or null. */
  auditCheckpointUnsignedSince: () => number | null = () => this.startedAt;

  readonly auditCheckpointUnsigned = new Gauge({
    name: 'audit_checkpoint_unsigned_seconds',
    help: 'Seconds the oldest audit event not yet covered by a signed checkpoint has waited (0 when every event is covered; since start when checkpoints are disabled). The one to alert on.',
    registers: [this.registry],
    collect: () => {
      const since = this.auditCheckpointUnsignedSince();
      this.auditCheckpointUnsigned.set(since === null ? 0 : Math.max(0, (Date.now() - since) / 1000));
    },
  });

  readonly auditCheckpointFailures = new Counter({
    name: 'audit_checkpoint_failures_total',
    help: 'Audit checkpoints that could not be signed or written (retried with backoff; requests are not affected).',
    registers: [this.registry],
  });

  private readonly startedAt = Date.now();

  readonly policyReloads = new Counter({
    name: 'policy_reloads_total',
    help: 'Policy file reloads (SIGHUP), by outcome: success (the new file is in force) or failure (the previous policy stays).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly policyLastReloadSuccessful = new Gauge({
    name: 'policy_last_reload_successful',
    help: 'Whether the last policy reload succeeded (1; also before any reload) or failed (0: the file on disk is not the policy in force).',
    registers: [this.registry],
  });

  readonly policyLoadedTimestamp = new Gauge({
    name: 'policy_loaded_timestamp_seconds',
    help: 'When the policy in force was loaded (Unix time, seconds).',
    registers: [this.registry],
  });

  readonly policyInfo = new Gauge({
    name: 'policy_info',
    help: 'Always 1; its digest label is the SHA-256 (hex) of the policy file in force ("dev" in dev mode).',
    labelNames: ['digest'] as const,
    registers: [this.registry],
  });

  readonly authFailures = new Counter({
    name: 'auth_failures_total',
    help: 'Failed authentications, by whether they were refused by the per-address limit (429) and how they were audited (own event, or counted in a summary).',
    labelNames: ['limited', 'audit'] as const,
    registers: [this.registry],
  });

  readonly refusalHolds = new Counter({
    name: 'refusal_holds_total',
    help: '429 answers by whether they were held for their Retry-After (held), went out at once because a hold bound was reached (over_cap), or holding is off (off).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  /** How many 429 answers are held now; read at scrape time. */
  refusalsHeldNow: () => number = () => 0;

  readonly refusalsHeld = this.gaugeReadAtScrape('refusals_held', '429 answers being held right now (bounded by REFUSAL_HOLD_TOTAL).', () => this.refusalsHeldNow());

  /** How many requests wait for a turn of their principal now; read at scrape time. */
  requestsWaitingNow: () => number = () => 0;

  readonly requestsWaiting = this.gaugeReadAtScrape(
    'requests_waiting_turn',
    'Requests waiting for a turn of their principal (REQUEST_CONCURRENCY_PER_PRINCIPAL), all principals together.',
    () => this.requestsWaitingNow(),
  );

  /** Request-body bytes held now, and whether the process sheds for memory; read at scrape time. */
  requestBufferBytesNow: () => number = () => 0;
  memorySheddingNow: () => boolean = () => false;

  readonly requestBufferBytes = this.gaugeReadAtScrape(
    'request_buffer_bytes',
    'Request-body bytes being received and held, all principals together (bounded by REQUEST_BUFFER_MAX_BYTES).',
    () => this.requestBufferBytesNow(),
  );

  readonly memoryShedding = this.gaugeReadAtScrape('memory_shedding', '1 while the process sheds /v1 requests for memory (and /readyz fails), else 0.', () =>
    this.memorySheddingNow() ? 1 : 0,
  );

  /** Shared limits (REDIS_URL): whether they are decided per process now; read at scrape time. */
  sharedLimitsFallbackNow: () => boolean = () => false;
  redisConnectedNow: () => boolean = () => false;

  readonly sharedLimitsFallback = this.gaugeReadAtScrape(
    'shared_limits_fallback',
    '1 while the shared limits (REDIS_URL) are decided per process because Redis does not answer, else 0 (also 0 without REDIS_URL).',
    () => (this.sharedLimitsFallbackNow() ? 1 : 0),
  );

  readonly sharedLimitsLocalDecisions = new Counter({
    name: 'shared_limits_local_decisions_total',
    help: 'Decisions of a shared limit (rate, inFlight, kms, auth) made per process because Redis did not answer in time or was down.',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });

  readonly redisConnected = this.gaugeReadAtScrape('redis_connected', '1 while the connection to REDIS_URL is ready, else 0 (also 0 without REDIS_URL).', () =>
    this.redisConnectedNow() ? 1 : 0,
  );

  constructor(options: { collectDefaults?: boolean } = {}) {
    if (options.collectDefaults ?? true) collectDefaultMetrics({ register: this.registry });
    // Both series exist from the start, so increase() and absence-free alerts work.
    this.policyReloads.inc({ outcome: 'success' }, 0);
    this.policyReloads.inc({ outcome: 'failure' }, 0);
    this.policyLastReloadSuccessful.set(1);
  }

  /** A gauge whose value `read` gives when Prometheus scrapes (its reader is set by the app). */
  private gaugeReadAtScrape(name: string, help: string, read: () => number): Gauge {
    const gauge: Gauge = new Gauge({ name, help, registers: [this.registry], collect: () => gauge.set(read()) });
    return gauge;
  }

  private readonly sizeReaders = new Map<CacheKind, () => number>();
  private circuitStateReader: (() => number) | undefined;
  private policyReader: (() => LoadedPolicyInfo) | undefined;

  /** The cache-entry gauge is read live at scrape time. */
  trackCacheSize(kind: CacheKind, size: () => number): void {
    this.sizeReaders.set(kind, size);
  }

  /** The circuit-state gauge is read live at scrape time too (an open circuit turns half-open by the clock). */
  trackCircuitState(state: () => number): void {
    this.circuitStateReader = state;
    this.kmsCircuitState.set(state());
  }

  /** The policy gauges are read live at scrape time from the policy in force. */
  trackPolicy(current: () => LoadedPolicyInfo): void {
    this.policyReader = current;
  }

  /** Counts a reload attempt's outcome. */
  policyReloaded(ok: boolean): void {
    this.policyReloads.inc({ outcome: ok ? 'success' : 'failure' });
    this.policyLastReloadSuccessful.set(ok ? 1 : 0);
  }

  async scrape(): Promise<string> {
    for (const [kind, read] of this.sizeReaders) this.cacheEntries.set({ cache: kind }, read());
    if (this.circuitStateReader) this.kmsCircuitState.set(this.circuitStateReader());
    for (const [region, state] of this.regionCircuitStates()) this.kmsRegionCircuitState.set({ region }, state);
    if (this.policyReader) {
      const policy = this.policyReader();
      // One series only: the previous digest's series disappears when the policy changes.
      this.policyInfo.reset();
      this.policyInfo.set({ digest: policy.digest }, 1);
      this.policyLoadedTimestamp.set(policy.loadedAt.getTime() / 1000);
    }
    return this.registry.metrics();
  }

  hit(kind: CacheKind): void {
    this.cacheHits.inc({ cache: kind });
  }

  miss(kind: CacheKind): void {
    this.cacheMisses.inc({ cache: kind });
  }

  evicted(kind: CacheKind, reason: EvictionReason): void {
    this.cacheEvictions.inc({ cache: kind, reason });
  }
}
