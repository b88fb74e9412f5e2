/** The shape of a results file (bench/results/latest.json, [smoke-]<timestamp>.json). */
import type { HttpMeasurement } from './load.js';
import type { Settings } from './settings.js';

interface CaseBase {
  /** Human label for tables and charts. */
  label: string;
  /** Plaintext bytes per operation (0 where not applicable). */
  payloadBytes: number;
}

export interface HttpCase extends CaseBase, HttpMeasurement {
  kind: 'http';
  server: string;
  path: string;
  /** Plaintext megabytes (10^6 bytes) per second: requestsPerSecond x payloadBytes. */
  mbPerSecond: number;
  /** Layer cases: each interleaved round's req/s (the reported figures are the medians). */
  roundsRequestsPerSecond?: number[];
}

export interface OpsCase extends CaseBase {
  kind: 'ops';
  opsPerSecond: number;
  ops: number;
  meanUs: number;
  mbPerSecond: number;
  /** Interleaved rounds (in-process comparison): each round's ops/s; opsPerSecond is the median. */
  roundsOpsPerSecond?: number[];
}

export interface KmsCase extends CaseBase {
  kind: 'kms';
  requests: number;
  contexts: number;
  concurrency: number;
  cacheMaxMessages: number;
  /** KMS calls by operation (GenerateDataKey, DescribeKey, ...). */
  kmsCalls: Record<string, number>;
  generateDataKeyCalls: number;
  how: string;
}

/** The noisy-neighbour case: principal B's workload, alone or while principal A floods. */
export interface NeighbourCase extends CaseBase {
  kind: 'neighbour';
  provider: 'local-kms' | 'local';
  /** `haproxy`: A and B went through the front tier (deploy/haproxy/haproxy.cfg); absent: straight to the service. */
  front?: 'haproxy';
  /** B's offered load: requests per second over this many connections, for this long. */
  offeredRate: number;
  connections: number;
  durationSeconds: number;
  /** B's 2xx answers per second and in total. */
  requestsPerSecond: number;
  requestsTotal: number;
  /** B's failures: non-2xx answers by status, plus transport `errors` (timeouts included). */
  failed: Record<string, number>;
  /** From each request's scheduled start (open loop), to the hundredth of a millisecond. */
  latencyMs: { p50: number; p99: number; mean: number; max?: number };
  /** B's p99 in each round, in order; the case's other figures are those of the median round. */
  p99Rounds?: number[];
  /**
   * B's p99 over the requests scheduled from the second second of the pass on (in a flooded
   * pass: once A's first second, with its burst of KMS budget, is over), and in each round.
   */
  p99AfterFirstSecond?: number;
  p99AfterFirstSecondRounds?: number[];
  /**
   * B's time inside the service: the access log's responseTime (from Fastify's onRequest to the
   * answer), so without the generator's own delays or the wait before the service reads the
   * request. In this pass, and its p99 in each round.
   */
  inServiceMs?: { p50: number; p99: number };
  inServiceP99Rounds?: number[];
  /**
   * The p99s over every round's requests together: steadier than any one round's (whose p99 is
   * its twentieth-slowest request).
   */
  pooledP99Ms?: { all: number; afterFirstSecond: number; inService: number };
  /** Service settings the run changed from the defaults (`--neighbour-env`). */
  settingsOverridden?: Record<string, string>;
  /** The CPUs the service had to itself and those the generators and local-kms shared; null when not split. */
  cpusSplit?: { service: string; others: string } | null;
  /** From B's audit events in the measured pass. */
  cacheHits: number;
  cacheMisses: number;
  cacheHitRate: number | null;
  /** Distinct KMS request ids behind B's cache misses. */
  kmsCalls: number;
  /** Every KMS call the service made in the measured pass (/metrics), by operation. */
  serviceKmsCalls: Record<string, number>;
  /** A's flood, when there is one: requests answered, by status. */
  flood?: { connections: number; requests: number; byStatus: Record<string, number> };
}

export interface SkippedCase extends CaseBase {
  kind: 'skipped';
  reason: string;
}

/** A single large stream over HTTP, with the server's memory during it. */
export interface StreamCase extends CaseBase {
  kind: 'stream';
  server: string;
  path: string;
  seconds: number;
  /** Plaintext megabytes (10^6 bytes) per second. */
  mbPerSecond: number;
  /** The server's resident memory before the stream, and its peak during it (sampled every 25 ms). */
  idleRssMiB: number;
  peakRssMiB: number;
  rssGrowthMiB: number;
  /**
   * CPU seconds the server and the client (the runner) used during the stream, and their sum
   * over the stream's wall time: how many of the machine's cores the transfer kept busy.
   * Absent where /proc is unavailable.
   */
  serverCpuSeconds?: number;
  clientCpuSeconds?: number;
  coresBusy?: number;
}

export type CaseResult = HttpCase | OpsCase | KmsCase | NeighbourCase | StreamCase | SkippedCase;

export interface TargetResult {
  id: string;
  description: string;
  target: string;
  measured: number | null;
  met: boolean | null;
  note?: string;
}

export interface ProfileFrame {
  functionName: string;
  location: string;
  selfMs: number;
  selfPercent: number;
  category: string;
}

export interface ProfileSummary {
  server: string;
  file: string;
  totalMs: number;
  byCategory: Record<string, number>;
  top: ProfileFrame[];
}

export interface BenchResults {
  meta: {
    startedAt: string;
    finishedAt: string;
    command: string;
    gitCommit: string;
    gitDirty: boolean;
    node: string;
    os: string;
    cpuModel: string;
    cpuCount: number;
    memoryGiB: number;
    loadAverageAtStart: number[];
    loadAverageAtEnd: number[];
    packages: Record<string, string>;
  };
  settings: Settings;
  cases: Record<string, CaseResult>;
  ratios: Record<string, number | null>;
  targets: TargetResult[];
  notes: string[];
  profiles: ProfileSummary[];
}
