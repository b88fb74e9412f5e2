/**
 * `npm run load` (bench/main.ts load): how much encrypt traffic the service takes, and whether
 * it takes 80% of that for a minute without a single error.
 *
 *   1. starts the service as a child process (lib/services.ts startStandaloneService: embedded
 *      local provider, throwaway keystore and audit log, dev token), so the load generator
 *      (autocannon, in this process) and the service each have their own CPU;
 *   2. max throughput: POST /v1/encrypt with a 1 KiB payload, as fast as `--connections`
 *      connections go, for `--max-seconds` (10);
 *   3. sustained: `--fraction` (0.8) of that rate (autocannon overallRate) for
 *      `--sustain-seconds` (60); reports errors, timeouts, non-2xx, latency p50/p99;
 *   4. stops the service. Exit status 1 if the sustained phase saw any error or non-2xx.
 *
 *   npm run load
 *   npm run load -- --max-seconds 5 --sustain-seconds 20 --connections 20 --size 4096
 *
 * Bounded: loopback only, fixed durations, the service is always stopped. The per-principal
 * limits are raised for the run (the default 60,000/min would be the bottleneck), every other
 * setting is the default, the audit log included (a real file, written per request).
 */
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { summarize } from '../lib/load.js';
import { startStandaloneService } from '../lib/services.js';

export async function load(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      'max-seconds': { type: 'string', default: '10' },
      'sustain-seconds': { type: 'string', default: '60' },
      fraction: { type: 'string', default: '0.8' },
      connections: { type: 'string', default: '50' },
      size: { type: 'string', default: '1024' },
    },
  });
  const maxSeconds = Number(values['max-seconds']);
  const sustainSeconds = Number(values['sustain-seconds']);
  const fraction = Number(values.fraction);
  const connections = Number(values.connections);
  const size = Number(values.size);
  for (const [name, value, max] of [
    ['--max-seconds', maxSeconds, 600],
    ['--sustain-seconds', sustainSeconds, 3_600],
    ['--fraction', fraction, 1],
    ['--connections', connections, 1_000],
    ['--size', size, 4 * 1024 * 1024],
  ] as const) {
    if (!(value > 0 && value <= max)) throw new Error(`${name} must be in (0, ${max}]`);
  }

  const body = JSON.stringify({ plaintext: Buffer.alloc(size, 0x5a).toString('base64'), context: { tenant: 'bench', purpose: 'load' } });
  const service = await startStandaloneService();
  console.log(`service pid ${service.pid} on ${service.url}; payload ${size} B; ${connections} connections`);
  try {
    const target = { url: `${service.url}/v1/encrypt`, method: 'POST', headers: service.headers, body, connections, timeout: 10 };
    // A short warm-up so JIT and the first data key are not in the measurement.
    await autocannon({ ...target, duration: 2 });

    console.log(`\n1. max throughput: ${maxSeconds} s as fast as ${connections} connections go`);
    const max = await autocannon({ ...target, duration: maxSeconds });
    const maxSummary = summarize(max);
    console.table(maxSummary);
    const rate = Math.max(1, Math.floor(max.requests.average * fraction));

    console.log(`\n2. sustained: ${sustainSeconds} s at ${Math.round(fraction * 100)}% = ${rate} requests/s (overallRate)`);
    const sustained = await autocannon({ ...target, duration: sustainSeconds, overallRate: rate });
    const sustainedSummary = summarize(sustained);
    console.table(sustainedSummary);

    const failures = sustained.errors + sustained.timeouts + sustained.non2xx;
    const report = {
      payloadBytes: size,
      connections,
      max: maxSummary,
      sustained: { targetRate: rate, ...sustainedSummary, statusCodes: sustained.statusCodeStats },
      ok: failures === 0,
    };
    console.log(`\nRESULT ${JSON.stringify(report)}`);
    if (failures > 0) {
      console.error(`sustained phase: ${sustained.errors} errors, ${sustained.timeouts} timeouts, ${sustained.non2xx} non-2xx`);
      const log = service.output().trim();
      if (log) console.error(`service output (tail):\n${log.slice(-4_000)}`);
      return 1;
    }
    return 0;
  } finally {
    await service.stop();
  }
}
