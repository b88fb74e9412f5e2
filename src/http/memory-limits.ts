/**
 * Memory thresholds for load shedding (@fastify/under-pressure): above them API requests get
 * 503 + Retry-After instead of being taken on, so a burst of large bodies degrades into refusals
 * rather than an out-of-memory kill of every caller's requests.
 *
 * Defaults when unset: 85 % of V8's heap limit (shed before V8's last-resort collections and its
 * fatal OOM), and 90 % of the memory the process may use: the cgroup (container) limit when one
 * is set, else the machine's memory. 0 turns a check off.
 */
import { totalmem } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import type { Config } from '../config.js';

export interface MemoryLimits {
  maxHeapUsedBytes: number;
  maxRssBytes: number;
}

export function memoryLimits(config: Pick<Config, 'MAX_HEAP_USED_BYTES' | 'MAX_RSS_BYTES'>): MemoryLimits {
  return {
    maxHeapUsedBytes: config.MAX_HEAP_USED_BYTES ?? Math.floor(0.85 * getHeapStatistics().heap_size_limit),
    maxRssBytes: config.MAX_RSS_BYTES ?? Math.floor(0.9 * memoryAvailable()),
  };
}

function memoryAvailable(): number {
  const machine = totalmem();
  // process.constrainedMemory(): the cgroup limit; 0, undefined or a huge value when there is none.
  const constrained = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.();
  return constrained !== undefined && constrained > 0 && constrained < machine ? constrained : machine;
}
