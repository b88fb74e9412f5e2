/**
 * The memory-pressure gate (src/admission/memory-pressure.ts) sheds with hysteresis: it starts above
 * a high-water mark and stops only below the low-water mark, on what the process can give back
 * (V8 heap used, and heap used + external memory), never on RSS alone unless asked to.
 * Readings are given as numbers here: the gate's rule, not the process's memory, is under test
 * (test/ops/memory-shedding.test.ts drives it with real allocations).
 */
import { describe, expect, it } from 'vitest';
import { MemoryPressure, type MemoryReading } from '../../src/admission/memory-pressure.js';

const MiB = 1024 * 1024;

function gateOver(readings: MemoryReading[], marks: Partial<ConstructorParameters<typeof MemoryPressure>[0]> = {}) {
  let next = 0;
  const gate = new MemoryPressure(
    { maxHeapUsedBytes: 0, maxMemoryUsedBytes: 100 * MiB, maxRssBytes: 0, lowWaterPercent: 80, ...marks },
    () => readings[next++]!,
  );
  return readings.map(() => gate.sample());
}

const used = (heapUsed: number, external = 0, rss = heapUsed + external): MemoryReading => ({ heapUsed: heapUsed * MiB, external: external * MiB, rss: rss * MiB });

describe('MemoryPressure', () => {
  it('starts above the high-water mark, keeps shedding between the marks, stops below the low one', () => {
    expect(gateOver([used(50), used(60, 41), used(90), used(81), used(79), used(95), used(101)])).toEqual([
      false, true, true, true, false, false, true,
    ]);
  });

  it('counts external memory (request buffers live there) with the heap', () => {
    expect(gateOver([used(20, 90), used(20, 70), used(20, 50)])).toEqual([true, true, false]);
  });

  it('never sheds on RSS alone, which need not fall after a flood', () => {
    expect(gateOver([used(10, 0, 5000), used(10, 0, 5000)])).toEqual([false, false]);
  });

  it('MAX_HEAP_USED_BYTES is a mark of its own, with the same hysteresis', () => {
    expect(gateOver([used(60), used(55), used(45)], { maxHeapUsedBytes: 58 * MiB })).toEqual([true, true, false]);
  });

  it('MAX_RSS_BYTES, when set, is a last-resort mark with the same hysteresis', () => {
    expect(gateOver([used(10, 0, 300), used(10, 0, 250), used(10, 0, 200)], { maxRssBytes: 280 * MiB })).toEqual([true, true, false]);
  });
});
