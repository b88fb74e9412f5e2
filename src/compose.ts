/**
 * The composition root: Config -> every component of the service that is not Fastify (key
 * provider and its decorators, caches, key directory, key guard, KMS budgets, request turns,
 * refusal holds, limiters, audit log and checkpointer, metrics, readiness). buildApp (app.ts)
 * only wires Fastify to what this returns. The process (server.ts), the tests and the bench
 * all build the service here; what differs is passed as overrides.
 *
 * One component per block, in dependency order, each with its metric hooks beside it.
 */
import type { Logger } from 'pino';
import { AuditLog } from './audit/audit-log.js';
import type { Checkpointer } from './audit/checkpointer.js';
import { PolicyStore } from './authz/store.js';
import { checkpointHealth, createAuditSigner, createCheckpointer, trailingCheckpointOf } from './checkpoints.js';
import type { Config } from './config.js';
import { DataKeyCache } from './keys/data-key-cache.js';
import { KmsBudgets } from './admission/kms-budget.js';
import { EnvelopeService } from './keys/envelope-service.js';
import type { AuditSink } from './audit/sink.js';
import { AuthFailureTracker } from './admission/auth-failures.js';
import { RequestTurns } from './admission/in-flight-limit.js';
import { FleetKmsBudgets } from './admission/shared-kms-budget.js';
import { SharedInFlight } from './admission/shared-in-flight.js';
import { FallbackState, SharedLimits, type WindowLimiter } from './admission/shared-limits.js';
import { createRedis, type Redis } from './fleet/redis.js';
import { LiveExamples } from './http/openapi/live-examples.js';
import { memoryLimits } from './admission/memory-limits.js';
import { MemoryPressure } from './admission/memory-pressure.js';
import { Readiness } from './http/readiness.js';
import { RefusalHolds } from './admission/refusal-hold.js';
import { RefusalSummaries } from './admission/refusal-summaries.js';
import { RequestBufferBudget } from './admission/request-buffer-budget.js';
import { KmsCallStats, withCallStats } from './kms/call-stats.js';
import { CIRCUIT_STATE_VALUE, CircuitBreaker, withCircuitBreaker } from './kms/circuit-breaker.js';
import { createKeyProvider, createRegionalProvider } from './kms/create-provider.js';
import { RegionalKms, type RegionalStack } from './kms/regional.js';
import { KeySets } from './keys/key-sets.js';
import { KeyDirectory } from './keys/key-directory.js';
import { KmsQueue } from './kms/kms-queue.js';
import type { KeyProvider } from './kms/provider.js';
import { appLogDrops } from './app-log-drops.js';
import { createAppLogger } from './logging.js';
import { instrumentProvider } from './metrics/kms-instrumentation.js';
import { traceProvider } from './metrics/kms-tracing.js';
import { ServiceMetrics } from './metrics/metrics.js';
import type { AdminDeps } from './operations/admin/admin.js';
import { KeyGuard } from './operations/key-guard.js';
import { hostname } from 'node:os';
import { fleetApplier } from './fleet/apply.js';
import { FleetBus } from './fleet/fleet-bus.js';
import { ReplicaRegistry } from './fleet/replica-registry.js';
import { SERVICE_VERSION } from './version.js';
import type { OperationDeps } from './operations/operation.js';

/** What a test, the bench or a script may put in place of what Config alone would build. */
export interface ComposeOverrides {
  /** The application log; default: createAppLogger(config). */
  logger?: Logger;
  /** The key provider, undecorated (e.g. one pointed at a private local-kms, or a counting wrapper). */
  provider?: KeyProvider;
  /** The undecorated provider of another region (a key set's key there); default: an AWS client for it. */
  providerFor?: (region: string) => KeyProvider;
  /** The key sets; default: KEY_SETS_FILE, or none. */
  keySets?: KeySets;
  /** The policy store; default: POLICY_FILE, or dev mode with DEV_TOKEN. */
  policy?: PolicyStore;
  /** The sink the app writes audit events to; default: the audit log at AUDIT_LOG (opened either way). */
  auditSink?: AuditSink;
  metrics?: ServiceMetrics;
  /** Clock for cache ages, KMS budgets and the recent-call stats. */
  now?: () => number;
  /** false: no signed audit checkpoints and no checkpoint detail in /readyz (tests that count events). */
  checkpoints?: false;
}

export interface Service {
  config: Config;
  logger: Logger;
  /** The provider as constructed (closed at shutdown); every call goes through `kms` below. */
  provider: KeyProvider;
  /** The provider behind its decorators: circuit breaker -> recent-call stats -> metrics -> span -> provider. */
  kms: KeyProvider;
  circuit: CircuitBreaker;
  kmsCalls: KmsCallStats;
  /** One KMS client, breaker and call stats per region; the home region's are `circuit` and `kmsCalls`. */
  regions: RegionalKms;
  keySets: KeySets;
  policy: PolicyStore;
  /** The audit log file (reopen, chain head, close). */
  auditLog: AuditLog;
  /** What the app writes events to: the audit log unless overridden. */
  audit: AuditSink;
  /** Signed audit checkpoints; undefined when disabled (aws without AUDIT_SIGNING_KEY_ID, or overridden). */
  checkpointer?: Checkpointer;
  metrics: ServiceMetrics;
  caches: { encrypt: DataKeyCache; decrypt: DataKeyCache };
  envelope: EnvelopeService;
  directory: KeyDirectory;
  budgets: KmsBudgets;
  operations: OperationDeps;
  admin: AdminDeps;
  readiness: Readiness;
  authFailures: AuthFailureTracker;
  holds: RefusalHolds;
  turns: RequestTurns;
  /**
   * The limits counted in Redis for the whole fleet (REDIS_URL): the rate limit and the
   * failed-authentication limit (the in-flight cap and KMS budgets are inside `turns` and
   * `operations.budgets`). Undefined members: per process only.
   */
  shared: { redis?: Redis; rateLimit?: WindowLimiter; authFailures?: WindowLimiter; fallback: FallbackState };
  /** Heap and external memory against their marks, with hysteresis: load shedding and /readyz follow it. */
  memoryPressure: MemoryPressure;
  /** Request bodies buffered, per principal and in all, and the audit summaries of the refusals. */
  buffers: { budget: RequestBufferBudget; refusals: RefusalSummaries };
  /** The OpenAPI examples this instance makes itself (local provider only). */
  liveExamples?: LiveExamples;
  /** With REDIS_URL: fleet admin actions and the replica heartbeat (started by compose, stopped by close()). */
  fleet?: FleetBus;
  /** Zeroes every cached data key and drops the metric subscriptions; the app's onClose calls it. */
  stop(): void;
  /** After the app has closed: the checkpointer (final checkpoint), the audit log, the provider. */
  close(checkpointGraceMs?: number): Promise<void>;
}

export async function compose(config: Config, overrides: ComposeOverrides = {}): Promise<Service> {
  const logger = overrides.logger ?? createAppLogger(config);
  const now = overrides.now ?? Date.now;
  const metrics = overrides.metrics ?? new ServiceMetrics();
  const logDrops = appLogDrops(logger);
  if (logDrops) metrics.appLogDroppedNow = () => logDrops.lines;

  const policy =
    overrides.policy ??
    (config.POLICY_FILE ? await PolicyStore.fromFile(config.POLICY_FILE, { logger }) : PolicyStore.dev(config.DEV_TOKEN, { logger }));
  metrics.trackPolicy(() => policy.current);
  const stopCountingReloads = policy.onReload((result) => metrics.policyReloaded(result.ok));

  const provider = overrides.provider ?? createKeyProvider(config, logger);

  // Audit log and checkpoints. After the provider: the local signer keeps its key in the
  // keystore the provider creates. Audit metrics are counted by the audit trail's hook.
  const signer = overrides.checkpoints === false ? undefined : createAuditSigner(config, logger);
  const trailing = signer ? trailingCheckpointOf(config) : undefined;
  let checkpointer: Checkpointer | undefined;
  const auditLog = AuditLog.open({
    destination: config.AUDIT_LOG,
    onWritten: () => checkpointer?.noteEvent(),
    onReopened: () => checkpointer?.noteRotation(),
  });
  if (signer) {
    checkpointer = createCheckpointer(config, logger, auditLog, signer, metrics, trailing);
    checkpointer.start();
  }
  const audit = overrides.auditSink ?? auditLog;

  // The breaker sits outside the instrumentation: a call it refuses never reaches KMS, so it
  // must not appear in kms_requests_total or the KMS latency histogram (it has its own counter).
  // One such stack per region (src/kms/regional.ts): a key set's keys in another region get
  // their own client, breaker and call stats.
  const keySets = overrides.keySets ?? (config.KEY_SETS_FILE ? await KeySets.fromFile(config.KEY_SETS_FILE, { logger }) : KeySets.none());
  const homeRegion = provider.kind === 'aws' ? config.AWS_REGION! : 'local';
  const buildStack = (region: string, raw: KeyProvider): RegionalStack => {
    const breaker = new CircuitBreaker({
      failureThreshold: config.KMS_BREAKER_FAILURES,
      cooldownMs: config.KMS_BREAKER_COOLDOWN_MS,
      onStateChange: ({ from, to, consecutiveFailures }) => {
        const line = { region, circuitFrom: from, circuitTo: to, consecutiveFailures, cooldownMs: config.KMS_BREAKER_COOLDOWN_MS };
        if (to === 'open') logger.warn(line, 'KMS circuit opened: failing KMS calls fast until a probe succeeds');
        else logger.info(line, `KMS circuit ${to}`);
      },
      onReject: (operation) => metrics.kmsCircuitRejections.inc({ operation }),
    });
    // Recent calls for GET /v1/admin/kms, inside the breaker like the metrics: only calls that reached KMS.
    const calls = new KmsCallStats(now);
    const kms = withCircuitBreaker(withCallStats(instrumentProvider(traceProvider(raw), metrics, region), calls), breaker);
    return { region, kms, circuit: breaker, calls, provider: raw };
  };
  const regions = new RegionalKms(
    buildStack(homeRegion, provider),
    (region) => buildStack(region, overrides.providerFor?.(region) ?? createRegionalProvider(config, region, logger)),
    () => keySets.current.regions,
  );
  const circuit = regions.home.circuit;
  const kmsCalls = regions.home.calls;
  metrics.trackCircuitState(() => CIRCUIT_STATE_VALUE[circuit.state]);
  metrics.regionCircuitStates = () => regions.stacks().map((stack) => [stack.region, CIRCUIT_STATE_VALUE[stack.circuit.state]]);
  const kms = regions.provider();

  const limits = {
    maxAgeMs: config.CACHE_MAX_AGE_MS,
    maxMessages: config.CACHE_MAX_MESSAGES,
    maxBytes: config.CACHE_MAX_BYTES,
    capacity: config.CACHE_CAPACITY,
    minShare: Math.floor((config.CACHE_CAPACITY * config.CACHE_MIN_SHARE_PERCENT) / 100),
  };
  const caches = {
    encrypt: new DataKeyCache('encrypt', limits, metrics, now),
    decrypt: new DataKeyCache('decrypt', limits, metrics, now),
  };
  metrics.trackCacheSize('encrypt', () => caches.encrypt.size);
  metrics.trackCacheSize('decrypt', () => caches.decrypt.size);

  const envelope = new EnvelopeService(kms, caches, { seedDecryptCache: config.CACHE_SEED_DECRYPT, partialMaxAgeMs: config.KEY_SET_PARTIAL_MAX_AGE_MS });
  // Shared look-ups (a known key's refresh, the alias list) wait in a queue of their own,
  // billed to no principal, so no principal's paced queue delays them.
  const lookups = new KmsQueue({ concurrency: config.KMS_LOOKUP_CONCURRENCY, pacePerSecond: config.KMS_LOOKUP_PACE_PER_SECOND });
  const directory = new KeyDirectory(kms, { lookups });

  // Shared limits (REDIS_URL): counters in Redis, each falling back to a per-process count of
  // the same size when Redis does not answer in time (admission/shared-limits.ts).
  const fallback = new FallbackState(logger, undefined, (limit) => metrics.sharedLimitsLocalDecisions.inc({ limit }));
  const redis = config.REDIS_URL
    ? createRedis(config.REDIS_URL, logger, {
        commandTimeoutMs: config.REDIS_COMMAND_TIMEOUT_MS,
        connectTimeoutMs: config.REDIS_CONNECT_TIMEOUT_MS,
        onState: (ready) => ready && fallback.probeNow(),
      })
    : undefined;
  metrics.redisConnectedNow = () => redis?.status === 'ready';
  metrics.sharedLimitsFallbackNow = () => fallback.active;
  const sharedLimits = new SharedLimits(redis, config.REDIS_KEY_PREFIX, fallback);
  const shared = {
    ...(redis && {
      redis,
      rateLimit: sharedLimits.window({ name: 'rate', points: config.RATE_LIMIT_MAX, durationMs: config.RATE_LIMIT_WINDOW_MS }),
      authFailures: sharedLimits.window({ name: 'auth', points: config.AUTH_FAILURE_MAX, durationMs: config.AUTH_FAILURE_WINDOW_MS }),
    }),
    fallback,
  };
  const sharedInFlight = redis
    ? new SharedInFlight(redis, fallback, { max: config.MAX_IN_FLIGHT_PER_PRINCIPAL, leaseMs: config.REDIS_IN_FLIGHT_LEASE_MS, keyPrefix: config.REDIS_KEY_PREFIX })
    : undefined;

  const budgets = new KmsBudgets({
    perSecond: config.KMS_BUDGET_PER_SECOND,
    burst: config.KMS_BUDGET_BURST,
    concurrency: config.KMS_CONCURRENCY_PER_PRINCIPAL,
    pacePerSecond: config.KMS_PACE_PER_SECOND,
    now,
    onReject: (operation) => metrics.kmsBudgetRejections.inc({ operation }),
  });
  metrics.kmsCallsQueuedNow = () => budgets.queued + directory.queued;
  // With Redis, each KMS call is also charged to the payer's fleet-wide budget.
  const payers = sharedLimits.fleetWide
    ? new FleetKmsBudgets(budgets, sharedLimits, {
        perSecond: config.KMS_BUDGET_PER_SECOND,
        burst: config.KMS_BUDGET_BURST,
        onReject: (operation) => metrics.kmsBudgetRejections.inc({ operation }),
      })
    : budgets;

  // The fleet: with REDIS_URL, evicts and policy reloads reach every replica (src/fleet/).
  const instanceId = config.INSTANCE_ID ?? hostname();
  const startedAt = new Date(now());
  let fleet: FleetBus | undefined;
  if (redis) {
    const registry = new ReplicaRegistry(redis, { instanceId, version: SERVICE_VERSION, startedAt, heartbeatMs: config.FLEET_HEARTBEAT_MS });
    fleet = new FleetBus(redis, registry, {
      instanceId,
      confirmTimeoutMs: config.FLEET_CONFIRM_TIMEOUT_MS,
      logger,
      apply: fleetApplier({ envelope, policy, audit, logger, onAudited: () => metrics.auditEvents.inc() }),
    });
    fleet.start();
  }

  const operations: OperationDeps = {
    guard: new KeyGuard(directory),
    envelope,
    directory,
    budgets: payers,
    defaultKeyId: config.DEFAULT_KEY_ID,
    keySets,
    regions,
    regionOrder: config.KMS_LOCAL_REGION?.split(',') ?? [homeRegion],
    keySetEvents: {
      dataKeyMade: (keySet, region, complete) => metrics.keySetDataKeys.inc({ key_set: keySet, region, complete: String(complete) }),
      unwrapped: (keySet, region, failover) => metrics.keySetUnwraps.inc({ key_set: keySet, region, failover: String(failover) }),
    },
  };
  const admin: AdminDeps = {
    envelope,
    directory,
    policy,
    circuit,
    kmsCalls,
    budgets: payers,
    regions,
    kms: {
      provider: provider.kind,
      region: provider.kind === 'aws' ? config.AWS_REGION : undefined,
      breakerFailures: config.KMS_BREAKER_FAILURES,
      breakerCooldownMs: config.KMS_BREAKER_COOLDOWN_MS,
    },
    instanceId,
    startedAt,
    ...(fleet ? { fleet } : {}),
  };

  const readiness = new Readiness(kms, audit, config.DEFAULT_KEY_ID, config.READINESS_CACHE_MS);
  if (overrides.checkpoints !== false) readiness.showCheckpoints(checkpointHealth(checkpointer, config.AUDIT_CHECKPOINT_INTERVAL_MS));

  const authFailures = new AuthFailureTracker({
    maxFailures: config.AUTH_FAILURE_MAX,
    windowMs: config.AUTH_FAILURE_WINDOW_MS,
    writeSummary: async (details) => {
      await audit.summarizeAuthFailures(details);
      metrics.auditEvents.inc();
    },
    onSummaryError: (error, details) => {
      metrics.auditFailures.inc();
      // The counts must not vanish: the app log keeps them (they hold no secret).
      logger.error({ errorName: (error as Error).name, authFailuresSummary: details }, 'audit summary of failed authentications could not be written');
    },
  });

  const holds = new RefusalHolds({ maxMs: config.REFUSAL_HOLD_MAX_MS, perCaller: config.REFUSAL_HOLD_PER_CALLER, total: config.REFUSAL_HOLD_TOTAL });
  metrics.refusalsHeldNow = () => holds.heldCount;

  const turns = new RequestTurns({ maxInFlight: config.MAX_IN_FLIGHT_PER_PRINCIPAL, concurrency: config.REQUEST_CONCURRENCY_PER_PRINCIPAL }, sharedInFlight);
  metrics.requestsWaitingNow = () => turns.waitingCount;

  // Memory as a budget (docs/OPERATIONS.md): request bodies counted per principal and in all,
  // shedding with hysteresis on what the process can give back, /readyz failing meanwhile, and
  // the refusals audited per principal and window.
  const memory = memoryLimits(config);
  const memoryPressure = new MemoryPressure({
    maxMemoryUsedBytes: memory.maxMemoryUsedBytes,
    maxHeapUsedBytes: memory.maxHeapUsedBytes,
    maxRssBytes: memory.maxRssBytes,
    lowWaterPercent: memory.lowWaterPercent,
  });
  readiness.followMemoryPressure(memoryPressure);
  metrics.memorySheddingNow = () => memoryPressure.shedding;
  const refusals = new RefusalSummaries({
    windowMs: config.REFUSAL_SUMMARY_WINDOW_MS,
    audit,
    onWritten: () => metrics.auditEvents.inc(),
    onSummaryError: (error, details) => {
      metrics.auditFailures.inc();
      logger.error({ errorName: (error as Error).name, refusalsSummary: details }, 'audit summary of refusals could not be written');
    },
  });
  const buffers = {
    budget: new RequestBufferBudget({ total: memory.requestBufferMaxBytes, perPrincipal: memory.requestBufferMaxBytesPerPrincipal }),
    refusals,
  };
  metrics.requestBufferBytesNow = () => buffers.budget.bufferedBytes;

  const liveExamples = provider.kind === 'local' ? new LiveExamples(operations) : undefined;

  return {
    config,
    logger,
    provider,
    kms,
    circuit,
    kmsCalls,
    regions,
    keySets,
    policy,
    auditLog,
    audit,
    ...(checkpointer && { checkpointer }),
    metrics,
    caches,
    envelope,
    directory,
    budgets,
    operations,
    admin,
    readiness,
    authFailures,
    holds,
    turns,
    shared,
    memoryPressure,
    buffers,
    ...(liveExamples && { liveExamples }),
    ...(fleet && { fleet }),
    stop() {
      envelope.clear();
      stopCountingReloads();
      sharedInFlight?.stop();
    },
    async close(checkpointGraceMs = 1_000) {
      await fleet?.stop();
      if (checkpointer && !(await checkpointer.close(checkpointGraceMs))) {
        logger.error('audit log closed without a final signed checkpoint (KMS Sign failed): its tail is unsigned');
      }
      await auditLog.close();
      await regions.closeAll();
      redis?.disconnect();
    },
  };
}
