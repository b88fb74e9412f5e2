/** What every case gets from the runner. */
import type { CaseResult } from './results.js';
import type { Settings } from './settings.js';

export interface LocalKms {
  endpoint: string;
  /** Its process, for CPU pinning (cpu-affinity.ts). */
  pid: number | undefined;
}

export interface RunContext {
  settings: Settings;
  /** Scratch directory for server logs, keystores and audit logs (deleted afterwards). */
  workDir: string;
  /** Server names to run under `node --cpu-prof`, and where the profiles go. */
  profileServers: ReadonlySet<string>;
  profileDir: string;
  /** The private local-kms, or why there is none. */
  localKms: LocalKms | { missing: string };
  /** Which case groups to run (all when empty). */
  only: ReadonlySet<string>;
  /** Which payload sizes (1k, 64k, 1m, max) the HTTP groups run (all when empty). */
  sizes: ReadonlySet<string>;
  /** Which layer variants case 5 runs (all when empty). */
  variants: ReadonlySet<string>;
  /** HTTP case ids to leave out (exploration: e.g. measure a route without the case before it). */
  skipCases: ReadonlySet<string>;
  /** The OTLP endpoint of case 5's tracing variants, while they run (lib/trace-sink.ts). */
  traceSinkEndpoint?: string;
  cases: Record<string, CaseResult>;
  notes: string[];
  /** .cpuprofile files written, with the server they belong to. */
  cpuProfiles: { server: string; file: string }[];
  log(message: string): void;
}

export function wants(ctx: RunContext, group: string): boolean {
  return ctx.only.size === 0 || ctx.only.has(group);
}

export function skip(ctx: RunContext, id: string, label: string, reason: string): void {
  ctx.cases[id] = { kind: 'skipped', label, payloadBytes: 0, reason };
}
