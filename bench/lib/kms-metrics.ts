/** KMS calls a service made, read from its /metrics (kms_requests_total). */

/** Sums kms_requests_total by operation (all outcomes) from the service's /metrics. */
export async function kmsCalls(baseUrl: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const counts: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const match = /^kms_requests_total\{([^}]*)\}\s+(\S+)/.exec(line);
    if (!match) continue;
    const operation = /operation="([^"]+)"/.exec(match[1]!)?.[1] ?? 'unknown';
    counts[operation] = (counts[operation] ?? 0) + Number(match[2]);
  }
  return counts;
}

/** The calls made between two readings, by operation (operations that made none left out). */
export function diff(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, count] of Object.entries(after)) {
    const delta = count - (before[name] ?? 0);
    if (delta > 0) out[name] = delta;
  }
  return out;
}
