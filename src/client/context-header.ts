/**
 * The `x-envelope-context` header of the binary and stream routes: the context form-encoded,
 * every byte outside the unreserved set percent-escaped (the service parses it strictly: no
 * `+` for space, no repeated key).
 */
export type Context = Readonly<Record<string, string>>;

export function encodeContextHeader(context: Context): string {
  return Object.entries(context)
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`)
    .join('&');
}

/** The context the service answered in its header (its own encoding: valid by construction). */
export function decodeContextHeader(value: string | undefined): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  const context: Record<string, string> = Object.create(null);
  if (value === '') return context;
  for (const pair of value.split('&')) {
    const at = pair.indexOf('=');
    const key = decodeURIComponent(at < 0 ? pair : pair.slice(0, at));
    context[key] = at < 0 ? '' : decodeURIComponent(pair.slice(at + 1));
  }
  return context;
}
