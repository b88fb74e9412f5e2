/**
 * Whether the process sheds for memory, with hysteresis: it starts shedding when a measure goes
 * above its mark and stops only once every measure is below MEMORY_LOW_WATER_PERCENT of its
 * mark, so a replica neither flaps at the mark nor stays out once memory is back.
 *
 * The measures are what the process can give back: V8's heap used, and heap used + external
 * memory (Buffers, so request bodies, live outside the heap). RSS is a mark only when
 * MAX_RSS_BYTES is set: freed memory stays with the allocator, so RSS need not fall after a
 * flood, and shedding on it alone would keep a replica out for good.
 */
export interface MemoryReading {
  heapUsed: number;
  external: number;
  rss: number;
}

export interface MemoryMarks {
  /** heapUsed + external; 0: no mark. */
  maxMemoryUsedBytes: number;
  /** heapUsed; 0: no mark. */
  maxHeapUsedBytes: number;
  /** rss; 0: no mark (the default). */
  maxRssBytes: number;
  lowWaterPercent: number;
}

function readMemory(): MemoryReading {
  const { heapUsed, external, rss } = process.memoryUsage();
  return { heapUsed, external, rss };
}

export class MemoryPressure {
  #shedding = false;
  #last: MemoryReading | undefined;

  constructor(
    private readonly marks: MemoryMarks,
    private readonly read: () => MemoryReading = readMemory,
  ) {}

  get shedding(): boolean {
    return this.#shedding;
  }

  /** The latest reading (for the log line when shedding starts or stops). */
  get last(): MemoryReading | undefined {
    return this.#last;
  }

  /** Reads memory and updates the state; returns whether the process sheds now. */
  sample(): boolean {
    const reading = this.read();
    this.#last = reading;
    const measures: [value: number, mark: number][] = [
      [reading.heapUsed + reading.external, this.marks.maxMemoryUsedBytes],
      [reading.heapUsed, this.marks.maxHeapUsedBytes],
      [reading.rss, this.marks.maxRssBytes],
    ];
    const active = measures.filter(([, mark]) => mark > 0);
    if (!this.#shedding) {
      this.#shedding = active.some(([value, mark]) => value > mark);
    } else {
      const low = this.marks.lowWaterPercent / 100;
      this.#shedding = !active.every(([value, mark]) => value < mark * low);
    }
    return this.#shedding;
  }
}
