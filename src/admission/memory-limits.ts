/**
 * The memory settings, with their defaults derived from the memory the process may use
 * (MEMORY_LIMIT_BYTES, else the cgroup (container) limit, else the machine's memory):
 *
 * - request-buffer budget (request-buffer-budget.ts): an eighth of the limit in all, a quarter of
 *   that per principal, never less than one largest body (BODY_LIMIT_BYTES). A body costs up to
 *   about four times its size at its end (its chunks, their concatenation, the answer), so the
 *   budget's worst case stays below the shedding mark.
 * - shedding marks (memory-pressure.ts): heap used + external memory above 60 % of the limit,
 *   or heap used above 85 % of V8's heap limit (before V8's last-resort collections and its
 *   fatal OOM); shedding stops below MEMORY_LOW_WATER_PERCENT of each. RSS is not a mark unless
 *   MAX_RSS_BYTES is set: it need not fall after a flood, and a replica shedding on it would
 *   stay out for good.
 */
import { totalmem } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import type { Config } from '../config.js';

export interface MemoryLimits {
  /** Where the defaults come from. */
  memoryLimitBytes: number;
  requestBufferMaxBytes: number;
  requestBufferMaxBytesPerPrincipal: number;
  maxMemoryUsedBytes: number;
  maxHeapUsedBytes: number;
  maxRssBytes: number;
  lowWaterPercent: number;
}

type MemoryConfig = Partial<
  Pick<
    Config,
    | 'MEMORY_LIMIT_BYTES'
    | 'BODY_LIMIT_BYTES'
    | 'REQUEST_BUFFER_MAX_BYTES'
    | 'REQUEST_BUFFER_MAX_BYTES_PER_PRINCIPAL'
    | 'MAX_MEMORY_USED_BYTES'
    | 'MAX_HEAP_USED_BYTES'
    | 'MAX_RSS_BYTES'
    | 'MEMORY_LOW_WATER_PERCENT'
  >
>;

export function memoryLimits(config: MemoryConfig): MemoryLimits {
  const memoryLimitBytes = config.MEMORY_LIMIT_BYTES ?? memoryAvailable();
  const largestBody = config.BODY_LIMIT_BYTES ?? 8 * 1024 * 1024;
  const requestBufferMaxBytes = config.REQUEST_BUFFER_MAX_BYTES ?? Math.max(largestBody, Math.floor(memoryLimitBytes / 8));
  return {
    memoryLimitBytes,
    requestBufferMaxBytes,
    requestBufferMaxBytesPerPrincipal:
      config.REQUEST_BUFFER_MAX_BYTES_PER_PRINCIPAL ?? Math.min(requestBufferMaxBytes, Math.max(largestBody, Math.floor(requestBufferMaxBytes / 4))),
    maxMemoryUsedBytes: config.MAX_MEMORY_USED_BYTES ?? Math.floor(0.6 * memoryLimitBytes),
    maxHeapUsedBytes: config.MAX_HEAP_USED_BYTES ?? Math.floor(0.85 * getHeapStatistics().heap_size_limit),
    maxRssBytes: config.MAX_RSS_BYTES ?? 0,
    lowWaterPercent: config.MEMORY_LOW_WATER_PERCENT ?? 75,
  };
}

function memoryAvailable(): number {
  const machine = totalmem();
  // process.constrainedMemory(): the cgroup limit; 0, undefined or a huge value when there is none.
  const constrained = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.();
  return constrained !== undefined && constrained > 0 && constrained < machine ? constrained : machine;
}
