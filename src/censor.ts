/**
 * The shared step of both redaction backstops (the app log's, src/logging.ts, and the audit
 * log's, src/audit/redaction.ts): censor an object's own fields by name, copy-on-write.
 */

/**
 * `fields` itself when none of `names` is an own, defined field of it (the normal case: no
 * allocation); otherwise a shallow copy with those fields set to `censor`. Never mutates.
 */
export function censorNamedFields<T extends Record<string, unknown>>(fields: T, names: readonly string[], censor: string): T {
  let copy: Record<string, unknown> | undefined;
  for (const name of names) {
    if (Object.hasOwn(fields, name) && fields[name] !== undefined) {
      copy ??= { ...fields };
      copy[name] = censor;
    }
  }
  return (copy ?? fields) as T;
}
