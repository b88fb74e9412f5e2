/**
 * A policy file nested thousands of levels deep (1 MiB of `[` or `- `) must be refused before
 * the YAML parser walks it: parsing such a file blocks the event loop for seconds, and a
 * compact `- - - …` sequence exhausts the heap. The parser is spied on (the real one runs) to
 * show it is never called for such a file; valid policies still reach it.
 */
import * as yaml from 'yaml';
import { describe, expect, it, vi } from 'vitest';
import { PolicyError } from '../../src/authz/errors.js';
import { validatePolicyText } from '../../src/authz/policy-validate.js';

vi.mock('yaml', async (importOriginal) => {
  const real = await importOriginal<typeof import('yaml')>();
  return { ...real, parseDocument: vi.fn(real.parseDocument) };
});

const MIB = 1024 * 1024;
const header = ['version: 1', 'authentication:', '  apiKeys:', `    - { name: svc, sha256: "${'a'.repeat(64)}" }`].join('\n');

/** `prefix` + `unit` repeated (+ `suffix` repeated as often), padded with a comment to exactly `size` bytes. */
function padded(prefix: string, unit: string, suffix = '', size = MIB): string {
  const count = Math.floor((size - prefix.length - 16) / (unit.length + suffix.length));
  const body = `${prefix}${unit.repeat(count)}${suffix.repeat(count)}\n`;
  return `${body}#${' '.repeat(size - body.length - 2)}\n`;
}

function refusal(text: string): PolicyError {
  try {
    validatePolicyText(text, 'policy.yaml');
  } catch (error) {
    if (error instanceof PolicyError) return error;
    throw error;
  }
  throw new Error('expected a PolicyError');
}

describe('policy parsing bounds', () => {
  const deep = {
    'flow sequences': padded(`${header}\nrules: `, '[', ']'),
    'flow mappings': padded(`${header}\nrules: `, '{a: ', '}'),
    'a compact block sequence': padded(`${header}\nrules:\n  `, '- '),
  };
  for (const [shape, text] of Object.entries(deep)) {
    it(`refuses 1 MiB of ${shape} nested deeper than the bound, at the line and column, without parsing it`, () => {
      expect(Buffer.byteLength(text)).toBe(MIB);
      vi.mocked(yaml.parseDocument).mockClear();
      const error = refusal(text);
      expect(error.issues).toHaveLength(1);
      // `rules:` is a level of its own: the 64th bracket (column 8 + 63) is the 65th level.
      expect(error.issues[0]).toMatchObject({ line: shape === 'a compact block sequence' ? 6 : 5, message: 'YAML: nested deeper than 64 levels' });
      if (shape === 'flow sequences') expect(error.message).toContain('policy.yaml:5:71: YAML: nested deeper than 64 levels');
      expect(error.message).toMatch(/^ *policy\.yaml:\d+:\d+: YAML: nested deeper than 64 levels$/m);
      expect(yaml.parseDocument).not.toHaveBeenCalled();
    });
  }

  it('refuses block nesting by indentation too', () => {
    const lines = [header, 'rules:'];
    for (let depth = 1; depth <= 100; depth += 1) lines.push(`${' '.repeat(depth)}- k${depth}:`);
    const error = refusal(lines.join('\n'));
    expect(error.issues[0]?.message).toBe('YAML: nested deeper than 64 levels');
    expect(yaml.parseDocument).not.toHaveBeenCalled();
  });

  it('refuses text larger than 1 MiB before parsing', () => {
    vi.mocked(yaml.parseDocument).mockClear();
    const error = refusal(padded(`${header}\nrules: []\n`, ' ', '', MIB + 1));
    expect(error.issues[0]?.message).toBe('larger than 1048576 bytes');
    expect(yaml.parseDocument).not.toHaveBeenCalled();
  });

  it('still parses ordinary policies, brackets inside quoted, commented and block scalars included', () => {
    vi.mocked(yaml.parseDocument).mockClear();
    const text = [
      header,
      `# ${'['.repeat(200)}`,
      'rules:',
      '  - id: "a [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["',
      `    description: '${'{'.repeat(100)}'`,
      '    principals: [svc]',
      '    operations: [encrypt]',
      '    keys: [alias/default]',
      '    note: |',
      `      ${'['.repeat(100)}`,
      `      ${'- '.repeat(100)}`,
      '    context:',
      '      equals: { tenant: acme }',
      '',
    ].join('\n');
    try {
      validatePolicyText(text, 'policy.yaml');
    } catch (error) {
      // A schema complaint is fine here (the description field may not exist); a depth refusal is not.
      expect((error as PolicyError).issues.map((issue) => issue.message).join('; ')).not.toContain('nested deeper');
    }
    expect(yaml.parseDocument).toHaveBeenCalledTimes(1);
  });
});
