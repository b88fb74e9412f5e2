/**
 * Size and nesting bounds checked before a policy file reaches the YAML parser. The parser
 * recurses per nesting level: 1 MiB of `[` blocks the event loop for seconds, and a compact
 * `- - - …` sequence exhausts the heap. A policy needs a handful of levels, so the text is
 * first run through the yaml package's own lexer (linear, and it agrees with the parser on
 * what is a quote, a comment or a block scalar), which stops at the first level too deep.
 */
import { CST, Lexer } from 'yaml';
import { PolicyError } from './errors.js';

export const MAX_YAML_BYTES = 1024 * 1024;
/** Far above any policy (rules[].context.equals.key is 5), far below what strains the parser. */
export const MAX_YAML_DEPTH = 64;

/** Throws PolicyError (with line and column for nesting) when `text` exceeds a bound. */
export function checkYamlBounds(text: string, file: string): void {
  if (Buffer.byteLength(text) > MAX_YAML_BYTES) {
    throw new PolicyError(file, [{ field: '', message: `larger than ${MAX_YAML_BYTES} bytes` }]);
  }
  const offset = tooDeepAt(text);
  if (offset !== undefined) {
    const { line, column } = lineAndColumn(text, offset);
    throw new PolicyError(file, [{ line, column, field: '', message: `YAML: nested deeper than ${MAX_YAML_DEPTH} levels` }]);
  }
}

/** Lexer control tokens: markers that are not part of the source text. */
const CONTROL = new Set<string>([CST.DOCUMENT, CST.FLOW_END, CST.SCALAR]);

/**
 * Offset of the first token nested deeper than MAX_YAML_DEPTH, or undefined. Flow levels are
 * counted exactly; block levels are estimated from columns (each `-`, `?` or `key:` opens a
 * level, closed by a later line starting at or left of its column), which can undercount by
 * about half (a sequence at its key's indentation) but never lets deep nesting through.
 */
function tooDeepAt(text: string): number | undefined {
  let offset = 0;
  let column = 0;
  let flowDepth = 0;
  const blockColumns: number[] = [];
  let atLineStart = true;
  /** Column where the current node began on this line (a key before its `:`). */
  let nodeStart: number | undefined;
  for (const token of new Lexer().lex(text)) {
    if (CONTROL.has(token)) continue;
    const type = CST.tokenType(token);
    const start = offset;
    const startColumn = column;
    offset += token.length;
    const newline = token.lastIndexOf('\n');
    column = newline === -1 ? column + token.length : token.length - newline - 1;

    // A block scalar's content token ends with its last line's newline.
    if (type === 'newline' || (newline !== -1 && newline === token.length - 1)) {
      atLineStart = true;
      nodeStart = undefined;
      continue;
    }
    if (type === 'space' || type === 'comment') continue;
    if (type === 'flow-map-start' || type === 'flow-seq-start') {
      flowDepth += 1;
      if (flowDepth + blockColumns.length > MAX_YAML_DEPTH) return start;
    } else if (type === 'flow-map-end' || type === 'flow-seq-end') {
      flowDepth = Math.max(0, flowDepth - 1);
    }
    // Inside a flow collection lines may be indented anyhow, and `:` or `-` open no block level.
    if (flowDepth > 0 || type === 'flow-map-end' || type === 'flow-seq-end') {
      atLineStart = false;
      continue;
    }
    if (atLineStart) {
      while ((blockColumns.at(-1) ?? -1) >= startColumn) blockColumns.pop();
      atLineStart = false;
    }
    if (type === 'seq-item-ind' || type === 'explicit-key-ind' || type === 'map-value-ind') {
      blockColumns.push(type === 'map-value-ind' ? (nodeStart ?? startColumn) : startColumn);
      nodeStart = undefined;
      if (blockColumns.length > MAX_YAML_DEPTH) return start;
    } else {
      nodeStart ??= startColumn;
    }
  }
  return undefined;
}

/** 1-based line and column of `offset`, as the parser's LineCounter reports them. */
function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let index = text.indexOf('\n'); index !== -1 && index < offset; index = text.indexOf('\n', index + 1)) {
    line += 1;
    lineStart = index + 1;
  }
  return { line, column: offset - lineStart + 1 };
}
