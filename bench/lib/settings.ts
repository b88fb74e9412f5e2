/** How long and how hard each case runs: the full run, and the CI smoke run. */
export interface Settings {
  mode: 'full' | 'smoke';
  /** HTTP cases: autocannon warm-up (discarded) and measured seconds, and connections. */
  warmupSeconds: number;
  durationSeconds: number;
  connections: number;
  /** Case 5 splits each variant's measured time into this many interleaved rounds. */
  layerRounds: number;
  /** Large-payload cases use fewer connections (each request carries up to 8 MiB). */
  largeConnections: number;
  /** In-process cases: warm-up and measured milliseconds per series. */
  inprocessWarmupMs: number;
  inprocessDurationMs: number;
  /** The in-process comparison splits each series' time into this many interleaved rounds. */
  inprocessRounds: number;
  /** KMS economy: requests spread over `kmsContexts` contexts, with this CACHE_MAX_MESSAGES. */
  kmsSpreadRequests: number;
  kmsContexts: number;
  kmsCacheMaxMessages: number;
  /** Concurrency of the spread workload (our HTTP client / the SDK's in-process callers). */
  kmsSpreadConcurrency: number;
  /** Concurrent cold requests on one new context. */
  burstRequests: number;
  /** Case 6: rounds of (B alone, B while A floods), each on fresh services. */
  neighbourRounds: number;
  /** Case 6: settings given to its services over the defaults (to see what one limit changes). */
  neighbourEnv?: Record<string, string>;
  /**
   * The service children's node binary and flags (default: the runner's node, no flags), to
   * measure the service on another Node (the image's) or with V8 settings.
   */
  serviceNode?: string;
  serviceNodeVersion?: string;
  /** The server children: the tsc build, as production runs (server-build.ts), or the source through tsx. */
  servers: 'built' | 'source';
  serviceNodeFlags?: string[];
  /** Case 1 and 4: pin the server and the load generator to one CPU or to one each (cases/http.ts); unpinned by default. */
  pinHttp?: 'same' | 'split';
}

export const FULL: Settings = {
  mode: 'full',
  warmupSeconds: 10,
  durationSeconds: 10,
  connections: 32,
  layerRounds: 3,
  largeConnections: 8,
  inprocessWarmupMs: 2_000,
  inprocessDurationMs: 6_000,
  inprocessRounds: 3,
  kmsSpreadRequests: 10_000,
  kmsContexts: 10,
  kmsCacheMaxMessages: 1_000,
  kmsSpreadConcurrency: 32,
  burstRequests: 200,
  neighbourRounds: 5,
  servers: 'built',
};

export const SMOKE: Settings = {
  mode: 'smoke',
  warmupSeconds: 0.3,
  durationSeconds: 1,
  connections: 32,
  layerRounds: 1,
  largeConnections: 4,
  inprocessWarmupMs: 200,
  inprocessDurationMs: 500,
  inprocessRounds: 1,
  // 200 per context, as many as the burst: the burst must fit one key (target: 1 KMS call).
  kmsSpreadRequests: 2_000,
  kmsContexts: 10,
  kmsCacheMaxMessages: 200,
  kmsSpreadConcurrency: 32,
  burstRequests: 200,
  neighbourRounds: 1,
  // The smoke run checks that every case produces numbers: no build step for it.
  servers: 'source',
};
