/**
 * Parsing YAML while keeping the way back from a value to its line in the file.
 *
 * Schema validation reports JSON Pointer paths (`/rules/2/operations/0`); operators need
 * `policy.yaml:41:9: rules[2].operations[0]`. The yaml package's Document keeps every node's
 * source range, and a LineCounter turns offsets into line/column — so validation runs on the
 * plain JS value and errors are mapped back through the node tree.
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { PolicyError, type PolicyIssue } from './errors.js';
import { checkYamlBounds } from './yaml-bounds.js';

export type PathSegment = string | number;

export interface YamlSource {
  readonly file: string;
  /** The document as plain JS (maps -> objects, `__proto__` keys as own data properties). */
  readonly data: unknown;
  /**
   * An issue for the node at `path`. `at: 'key'` points at the mapping key instead of its value
   * (for "unknown field" errors); a path that does not exist points at its deepest existing
   * ancestor (for "missing field" errors).
   */
  issue(path: readonly PathSegment[], message: string, at?: 'key' | 'value'): PolicyIssue;
}

// Alias expansion budget: stops "billion laughs" documents before they allocate.
const MAX_ALIAS_COUNT = 100;

export function parseYamlSource(text: string, file: string): YamlSource {
  checkYamlBounds(text, file);
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false, version: '1.2' });
  const position = (offset: number | undefined) => {
    if (offset === undefined) return {};
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  if (doc.errors.length > 0) {
    throw new PolicyError(
      file,
      doc.errors.map((error) => ({
        // error.pos is an offset range; linePos is only filled in with prettyErrors, whose
        // multi-line messages (with a source excerpt) do not fit a log line.
        ...position(error.pos[0]),
        field: '',
        message: `YAML: ${firstLine(error.message)}`,
      })),
    );
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    throw new PolicyError(file, [{ field: '', message: `YAML: ${firstLine((error as Error).message)}` }]);
  }

  return {
    file,
    data,
    issue(path, message, at = 'value') {
      const found = walk(doc, path);
      const offset = (at === 'key' && found.complete ? found.keyNode : found.node)?.range?.[0] ?? found.keyNode?.range?.[0];
      return { ...position(offset), field: fieldName(found.segments, path.slice(found.segments.length)), message };
    },
  };
}

interface WalkResult {
  /** The deepest node reached, and the mapping key that led to it. */
  node: Node | undefined;
  keyNode: Node | undefined;
  /** The path segments resolved, typed: numbers where the node was a sequence. */
  segments: PathSegment[];
  complete: boolean;
}

function walk(doc: Document, path: readonly PathSegment[]): WalkResult {
  let node: Node | undefined = (doc.contents ?? undefined) as Node | undefined;
  let keyNode: Node | undefined;
  const segments: PathSegment[] = [];
  for (const segment of path) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === String(segment));
      if (pair === undefined) return { node, keyNode, segments, complete: false };
      keyNode = pair.key as Node;
      // `context:` with nothing after it has a null value node: stay on the key.
      node = (pair.value ?? undefined) as Node | undefined;
      segments.push(String(segment));
      if (node === undefined) return { node: keyNode, keyNode, segments, complete: segments.length === path.length };
    } else if (isSeq(node)) {
      const index = Number(segment);
      const item = Number.isInteger(index) ? node.items[index] : undefined;
      if (item === undefined) return { node, keyNode, segments, complete: false };
      node = item as Node;
      keyNode = undefined;
      segments.push(index);
    } else {
      return { node, keyNode, segments, complete: false };
    }
  }
  return { node, keyNode, segments, complete: true };
}

/** `rules[2].context.equals.purpose`; odd keys quoted: `equals["a.b"]`. */
export function fieldName(resolved: readonly PathSegment[], rest: readonly PathSegment[] = []): string {
  let out = '';
  for (const segment of [...resolved, ...rest]) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** JSON Pointer (RFC 6901) -> segments. */
export function pointerSegments(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? message;
}
