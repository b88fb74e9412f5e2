/**
 * `npm run soak` (bench/main.ts soak): minutes of steady traffic over many more encryption contexts than the data-key
 * cache holds, watching the service's memory and cache size. A leak (keys, sockets, audit
 * buffers, per-context state) shows as memory that keeps growing; a cache that ignores its
 * capacity shows as datakey_cache_entries above CACHE_CAPACITY.
 *
 *   - the service runs as a child process (lib/services.ts startStandaloneService: embedded
 *     local provider, throwaway keystore and audit log) with CACHE_CAPACITY=`--capacity` (1000);
 *   - autocannon sends `--rate` (1000) requests/s for `--minutes` (5): three encrypts for
 *     every decrypt; encrypts cycle through `--contexts` (5000) distinct contexts, decrypts
 *     through ciphertexts made up front under 1000 other contexts, so both caches churn;
 *   - every `--sample-seconds` (10) it scrapes /metrics: process_resident_memory_bytes,
 *     nodejs_heap_size_used_bytes, datakey_cache_entries{cache=encrypt|decrypt};
 *   - verdict: memory is flat when the last third's average RSS is within `--tolerance` (15%)
 *     of the middle third's (the first third is warm-up), and so is its heap floor (the lowest
 *     heapUsed sample, i.e. after a collection: heap averages swing with the GC's sawtooth,
 *     the floor is what a leak raises); the cache entries never exceed the capacity; errors
 *     and non-2xx are 0. Exit status 1 otherwise. Average heap drift is reported too.
 *
 *   npm run soak                       # 5 minutes
 *   npm run soak -- --minutes 3 --rate 500
 *
 * Bounded: loopback only, fixed duration, the service is always stopped.
 */
import { parseArgs } from 'node:util';
import autocannon, { type RequestSpec } from 'autocannon';
import { summarize } from '../lib/load.js';
import { startStandaloneService } from '../lib/services.js';

interface Sample {
  atSeconds: number;
  rssMiB: number;
  heapUsedMiB: number;
  encryptEntries: number;
  decryptEntries: number;
}

const MiB = 1024 * 1024;

function metric(text: string, name: string, labels = ''): number {
  const escaped = `${name}${labels}`.replace(/[{}"=]/g, (c) => `\\${c}`);
  const match = new RegExp(`^${escaped} ([0-9.e+-]+)$`, 'm').exec(text);
  return match ? Number(match[1]) : Number.NaN;
}

const average = (values: number[]) => values.reduce((sum, v) => sum + v, 0) / Math.max(1, values.length);

export async function soak(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      minutes: { type: 'string', default: '5' },
      rate: { type: 'string', default: '1000' },
      contexts: { type: 'string', default: '5000' },
      capacity: { type: 'string', default: '1000' },
      'sample-seconds': { type: 'string', default: '10' },
      connections: { type: 'string', default: '20' },
      tolerance: { type: 'string', default: '0.15' },
    },
  });
  const minutes = Number(values.minutes);
  const rate = Number(values.rate);
  const contexts = Number(values.contexts);
  const capacity = Number(values.capacity);
  const sampleSeconds = Number(values['sample-seconds']);
  const connections = Number(values.connections);
  const tolerance = Number(values.tolerance);
  for (const [name, value, max] of [
    ['--minutes', minutes, 240],
    ['--rate', rate, 100_000],
    ['--contexts', contexts, 1_000_000],
    ['--capacity', capacity, 1_000_000],
    ['--sample-seconds', sampleSeconds, 600],
    ['--connections', connections, 1_000],
    ['--tolerance', tolerance, 1],
  ] as const) {
    if (!(value > 0 && value <= max)) throw new Error(`${name} must be in (0, ${max}]`);
  }
  const durationSeconds = Math.round(minutes * 60);
  if (durationSeconds < sampleSeconds * 6) throw new Error('run at least six samples long (--minutes vs --sample-seconds)');

  const service = await startStandaloneService({ CACHE_CAPACITY: String(capacity) });
  const authHeaders = service.headers;
  console.log(
    `service pid ${service.pid} on ${service.url}: ${minutes} min at ${rate} req/s, ${contexts} encrypt contexts, ` +
      `CACHE_CAPACITY=${capacity}, sampling every ${sampleSeconds} s`,
  );
  try {
    const plaintext = Buffer.alloc(1024, 0x33).toString('base64');

    // Ciphertexts for the decrypt share, each under its own context (a decrypt-cache partition).
    const pool: string[] = [];
    for (let i = 0; i < 1_000; i++) {
      const response = await fetch(`${service.url}/v1/encrypt`, {
        method: 'POST',
        headers: authHeaders,
        body: JSON.stringify({ plaintext, context: { tenant: `d${i}`, purpose: 'soak' } }),
      });
      if (!response.ok) throw new Error(`pool encrypt failed: HTTP ${response.status}`);
      pool.push(((await response.json()) as { ciphertext: string }).ciphertext);
    }

    let encrypts = 0;
    let decrypts = 0;
    const encrypt: RequestSpec = {
      method: 'POST',
      path: '/v1/encrypt',
      headers: authHeaders,
      setupRequest: (request) => ({
        ...request,
        body: JSON.stringify({ plaintext, context: { tenant: `t${encrypts++ % contexts}`, purpose: 'soak' } }),
      }),
    };
    const decrypt: RequestSpec = {
      method: 'POST',
      path: '/v1/decrypt',
      headers: authHeaders,
      setupRequest: (request) => ({ ...request, body: JSON.stringify({ ciphertext: pool[decrypts++ % pool.length] }) }),
    };

    const samples: Sample[] = [];
    const started = Date.now();
    const sample = async () => {
      const text = await (await fetch(`${service.url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
      const row: Sample = {
        atSeconds: Math.round((Date.now() - started) / 1000),
        rssMiB: +(metric(text, 'process_resident_memory_bytes') / MiB).toFixed(1),
        heapUsedMiB: +(metric(text, 'nodejs_heap_size_used_bytes') / MiB).toFixed(1),
        encryptEntries: metric(text, 'datakey_cache_entries', '{cache="encrypt"}'),
        decryptEntries: metric(text, 'datakey_cache_entries', '{cache="decrypt"}'),
      };
      samples.push(row);
      console.log(
        `  t=${String(row.atSeconds).padStart(4)} s  rss ${row.rssMiB} MiB  heap ${row.heapUsedMiB} MiB  ` +
          `entries encrypt ${row.encryptEntries} decrypt ${row.decryptEntries}  (encrypts ${encrypts}, decrypts ${decrypts})`,
      );
    };
    const timer = setInterval(() => void sample().catch((error: unknown) => console.error('sample failed:', error)), sampleSeconds * 1000);
    const result = await Promise.resolve(
      autocannon({
        url: service.url,
        connections,
        duration: durationSeconds,
        overallRate: rate,
        timeout: 10,
        requests: [encrypt, encrypt, encrypt, decrypt],
      }),
    ).finally(() => clearInterval(timer));
    await sample();

    const third = Math.floor(samples.length / 3);
    const middle = samples.slice(third, 2 * third);
    const last = samples.slice(samples.length - third);
    const drift = (pick: (s: Sample) => number) => average(last.map(pick)) / average(middle.map(pick)) - 1;
    const rssDrift = drift((s) => s.rssMiB);
    const heapDrift = drift((s) => s.heapUsedMiB);
    const floor = (rows: Sample[]) => Math.min(...rows.map((s) => s.heapUsedMiB));
    const heapFloorDrift = floor(last) / floor(middle) - 1;
    const maxEntries = Math.max(...samples.map((s) => Math.max(s.encryptEntries, s.decryptEntries)));
    const traffic = summarize(result);
    const flat = Math.abs(rssDrift) <= tolerance && Math.abs(heapFloorDrift) <= tolerance;
    const bounded = maxEntries <= capacity;
    const clean = result.errors + result.timeouts + result.non2xx === 0;

    console.log('\ntraffic');
    console.table(traffic);
    console.log('memory (middle third -> last third)');
    console.table({
      rssMiB: { middle: +average(middle.map((s) => s.rssMiB)).toFixed(1), last: +average(last.map((s) => s.rssMiB)).toFixed(1), drift: `${(rssDrift * 100).toFixed(1)}%` },
      heapUsedMiB: {
        middle: +average(middle.map((s) => s.heapUsedMiB)).toFixed(1),
        last: +average(last.map((s) => s.heapUsedMiB)).toFixed(1),
        drift: `${(heapDrift * 100).toFixed(1)}%`,
      },
      heapFloorMiB: { middle: floor(middle), last: floor(last), drift: `${(heapFloorDrift * 100).toFixed(1)}%` },
    });
    console.log(`cache entries: max ${maxEntries} (capacity ${capacity}) -> ${bounded ? 'bounded' : 'OVER CAPACITY'}`);
    console.log(`memory: ${flat ? 'flat' : 'GROWING'} (RSS average and heap floor, tolerance ±${tolerance * 100}%)`);

    const report = {
      minutes,
      rate,
      contexts,
      capacity,
      traffic,
      rssDriftPercent: +(rssDrift * 100).toFixed(1),
      heapDriftPercent: +(heapDrift * 100).toFixed(1),
      heapFloorDriftPercent: +(heapFloorDrift * 100).toFixed(1),
      maxEntries,
      flat,
      bounded,
      clean,
      samples,
    };
    console.log(`\nRESULT ${JSON.stringify(report)}`);
    if (!clean) {
      const log = service.output().trim();
      if (log) console.error(`service output (tail):\n${log.slice(-4_000)}`);
    }
    return flat && bounded && clean ? 0 : 1;
  } finally {
    await service.stop();
  }
}
