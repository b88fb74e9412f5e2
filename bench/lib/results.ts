/** The shape of bench/results/<timestamp>.json. */
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

export interface SkippedCase extends CaseBase {
  kind: 'skipped';
  reason: string;
}

export type CaseResult = HttpCase | OpsCase | KmsCase | SkippedCase;

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
