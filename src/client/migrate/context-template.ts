/**
 * `--context k=v` whose value may name manifest columns: `{team}` is replaced by the row's
 * `team` column, `{{` and `}}` stand for literal braces. A template that names a column the
 * row lacks (or leaves empty) fails that file, not the batch: an empty context value is
 * refused by the service anyway, and a silently different context would lock the data away.
 */

export interface ContextTemplate {
  key: string;
  value: string;
}

export class ContextTemplateError extends Error {
  override readonly name = 'ContextTemplateError';
  readonly code = 'BadContext';
}

/** Parses one `k=v` (the first `=` splits; the value may hold more). */
export function parseContextTemplate(pair: string): ContextTemplate {
  const at = pair.indexOf('=');
  if (at <= 0) throw new ContextTemplateError(`--context takes key=value, not "${pair}"`);
  const template = { key: pair.slice(0, at), value: pair.slice(at + 1) };
  columnsOf(template.value); // syntax errors now, not per file
  return template;
}

const TOKEN = /\{\{|\}\}|\{([^{}]*)\}|[{}]/g;

/** The column names a template value uses. */
export function columnsOf(value: string): string[] {
  const names: string[] = [];
  for (const match of value.matchAll(TOKEN)) {
    const [token, name] = match;
    if (token === '{{' || token === '}}') continue;
    if (name === undefined || name === '') throw new ContextTemplateError(`"${value}": a lone "${token}" (write {{ or }} for a literal brace, {column} for a column)`);
    names.push(name);
  }
  return names;
}

/** The context for one row: every template value filled from its columns. */
export function fillContext(templates: readonly ContextTemplate[], columns: Readonly<Record<string, string>>): Record<string, string> {
  const context: Record<string, string> = {};
  for (const { key, value } of templates) {
    if (Object.hasOwn(context, key)) throw new ContextTemplateError(`context key "${key}" is given twice`);
    context[key] = value.replace(TOKEN, (token, name: string | undefined) => {
      if (token === '{{') return '{';
      if (token === '}}') return '}';
      const filled = name === undefined ? undefined : columns[name];
      if (filled === undefined || filled === '') throw new ContextTemplateError(`context "${key}" needs column "${name}", which this row ${filled === '' ? 'leaves empty' : 'does not have'}`);
      return filled;
    });
  }
  return context;
}
