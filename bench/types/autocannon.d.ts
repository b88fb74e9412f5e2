/** The part of autocannon 9's programmatic API the benchmark uses (it ships no types). */
declare module 'autocannon' {
  export interface Histogram {
    average: number;
    mean: number;
    stddev: number;
    min: number;
    max: number;
    total: number;
    p50: number;
    p90: number;
    p97_5: number;
    p99: number;
  }
  export interface Options {
    url: string;
    method?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    connections?: number;
    duration?: number;
    amount?: number;
    /** Stops after this many requests, within the duration (unlike amount, which replaces it). */
    maxOverallRequests?: number;
    timeout?: number;
    pipelining?: number;
    bailout?: number;
    /** Requests per second over all connections (open loop; latencies corrected for coordinated omission). */
    overallRate?: number;
    /** Taken in turn on each connection. */
    requests?: RequestSpec[];
  }
  export interface RequestSpec {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    /** Called before each send; returns the request to send. */
    setupRequest?: (request: RequestSpec, context: Record<string, unknown>) => RequestSpec;
  }
  export interface Result {
    duration: number;
    errors: number;
    timeouts: number;
    non2xx: number;
    '2xx': number;
    latency: Histogram;
    requests: Histogram & { sent: number };
    throughput: Histogram;
    statusCodeStats: Record<string, { count: number }>;
  }
  /** Returns autocannon's instance, a thenable without catch or finally: wrap it in Promise.resolve for those. */
  function autocannon(options: Options): PromiseLike<Result>;
  export default autocannon;
}
