/** Module hook (register.mjs): src/telemetry/spans.ts resolves to its pass-through, ./spans.ts. */
const REAL = new URL('../../src/telemetry/spans.ts', import.meta.url).href;
const STRIPPED = new URL('./spans.ts', import.meta.url).href;

export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  return resolved.url === REAL ? { ...resolved, url: STRIPPED } : resolved;
}
