/**
 * The layering rule of docs/ARCHITECTURE.md, checked on every import of every file under src/
 * (type-only imports, re-exports and dynamic imports included): a file imports its own layer or
 * a lower one, never a higher one, and a route reaches the envelope and KMS only through an
 * operation. A folder regroup edits only the tables below.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/** Highest first. A file belongs to the row with the longest matching path (folder ending in /, or file). */
const LAYERS: { name: string; paths: string[] }[] = [
  // The client library and the `envelope` command: apart from the service, which never imports them.
  { name: 'client', paths: ['src/client/'] },
  { name: 'composition', paths: ['src/server.ts', 'src/app.ts', 'src/compose.ts', 'src/checkpoints.ts', 'src/tracing.ts'] },
  // The command-line programs: apart from the service, on top of what they use.
  { name: 'cli', paths: ['src/cli/'] },
  // The offline audit verifier: reads what the audit code writes, never runs in the service.
  { name: 'verifier', paths: ['src/verifier/'] },
  { name: 'routes', paths: ['src/http/routes/'] },
  { name: 'http', paths: ['src/http/'] },
  // What one tenant can do to another: every limit, turn, hold, budget and shed decision.
  { name: 'admission', paths: ['src/admission/'] },
  // The fleet over Redis: admin actions sent to every replica, each carried out and audited there.
  { name: 'fleet', paths: ['src/fleet/'] },
  // Written by the edge from the facts an operation returns: operations never import it.
  { name: 'audit', paths: ['src/audit/'] },
  { name: 'metrics', paths: ['src/metrics/'] },
  { name: 'operations', paths: ['src/operations/'] },
  // The data-key cache, the key directory and the envelope service that uses both.
  { name: 'keys', paths: ['src/keys/'] },
  // Pure: the ciphertext formats and their crypto; the policy and its authentication.
  { name: 'domain', paths: ['src/format/', 'src/authz/'] },
  { name: 'kms', paths: ['src/kms/'] },
  // The one Redis client factory: below everything that may share Redis (limits, the fleet).
  { name: 'redis', paths: ['src/fleet/redis.ts'] },
  // The service's own spans and trace ids, through the OpenTelemetry API only.
  { name: 'base', paths: ['src/config.ts', 'src/version.ts', 'src/censor.ts', 'src/logging.ts', 'src/app-log-drops.ts', 'src/telemetry/'] },
];

/** These reach the envelope and KMS only through src/operations/, whatever their layer allows. */
const THROUGH_OPERATIONS = {
  // live-examples.ts makes the /docs examples' ciphertexts: an operation's job, like a route's.
  files: ['src/http/routes/', 'src/http/openapi/live-examples.ts'],
  mayNotImport: ['src/format/', 'src/keys/', 'src/kms/', '@aws-sdk/'],
};

/**
 * The client runs on the caller's machine: of the service's code it may use only the format
 * (one format, one implementation), never the service's layers.
 */
const CLIENT_ONLY = {
  files: ['src/client/'],
  mayImport: ['src/client/', 'src/format/'],
};

/**
 * Imports that break a rule and are known, each with its reason. Empty: every rule holds. An
 * entry no longer needed fails the test, so the list cannot go stale.
 */
const ALLOWED: { from: string; to: string }[] = [];

type Imports = Map<string, string[]>;

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = `${dir}/${name}`;
    if (statSync(join(ROOT, path)).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/** Every import of every src file: repository-relative .ts paths, or package names as written. */
function importsOfSrc(): Imports {
  const imports: Imports = new Map();
  for (const file of sourceFiles('src')) {
    const { importedFiles } = ts.preProcessFile(readFileSync(join(ROOT, file), 'utf8'), true, true);
    imports.set(
      file,
      importedFiles.map(({ fileName }) =>
        fileName.startsWith('.') ? relative(ROOT, resolve(ROOT, dirname(file), fileName)).replace(/\.js$/, '.ts') : fileName,
      ),
    );
  }
  return imports;
}

const matches = (path: string, prefix: string): boolean => (prefix.endsWith('/') ? path.startsWith(prefix) : path === prefix);

/** The row index of a src file (0 = highest), or undefined when no row names it. */
function layerOf(path: string): number | undefined {
  let best: { row: number; length: number } | undefined;
  LAYERS.forEach(({ paths }, row) => {
    for (const prefix of paths) {
      if (matches(path, prefix) && (!best || prefix.length > best.length)) best = { row, length: prefix.length };
    }
  });
  return best?.row;
}

/** One line per import that breaks a rule (and is not ALLOWED), plus the ALLOWED entries no import needs. */
function violations(imports: Imports): string[] {
  const found: string[] = [];
  const used = new Set<(typeof ALLOWED)[number]>();
  const allowed = (from: string, to: string): boolean => {
    const entry = ALLOWED.find((rule) => rule.from === from && matches(to, rule.to));
    if (entry) used.add(entry);
    return entry !== undefined;
  };
  for (const [file, targets] of imports) {
    const from = layerOf(file);
    if (from === undefined) {
      found.push(`${file}: in no layer (add it to LAYERS)`);
      continue;
    }
    for (const target of targets) {
      const mustGoThroughOperations = THROUGH_OPERATIONS.files.some((prefix) => matches(file, prefix));
      if (mustGoThroughOperations && THROUGH_OPERATIONS.mayNotImport.some((prefix) => matches(target, prefix))) {
        if (!allowed(file, target)) found.push(`${file} -> ${target}: skips src/operations/`);
        continue;
      }
      if (!target.startsWith('src/')) continue; // a package: only THROUGH_OPERATIONS restricts those
      const clientFile = CLIENT_ONLY.files.some((prefix) => matches(file, prefix));
      if (clientFile && !CLIENT_ONLY.mayImport.some((prefix) => matches(target, prefix))) {
        if (!allowed(file, target)) found.push(`${file} -> ${target}: the client imports only src/format/ of the service`);
        continue;
      }
      const to = layerOf(target);
      if (to !== undefined && to < from && !allowed(file, target)) {
        found.push(`${file} -> ${target}: ${LAYERS[from]!.name} imports the higher layer ${LAYERS[to]!.name}`);
      }
    }
  }
  for (const entry of ALLOWED) {
    if (!used.has(entry)) found.push(`ALLOWED ${entry.from} -> ${entry.to} is no longer needed: remove it`);
  }
  return found;
}

describe('imports follow the layers (docs/ARCHITECTURE.md)', () => {
  it('no src file imports a higher layer, and routes reach the envelope and KMS only through operations', () => {
    const imports = importsOfSrc();
    expect(imports.size).toBeGreaterThan(100);
    expect(violations(imports)).toEqual([]);
  });

  it('the check itself flags what the rule forbids', () => {
    const imports: Imports = new Map([
      ['src/http/routes/stream.ts', ['src/operations/stream.ts', 'src/format/stream-crypto.ts']],
      ['src/http/routes/encrypt.ts', ['src/operations/encrypt.ts', 'src/keys/envelope-service.ts', '@aws-sdk/client-kms', 'fastify']],
      ['src/operations/operation.ts', ['src/audit/event.ts', 'src/keys/kms-trace.ts']],
      ['src/kms/aws.ts', ['src/http/problem.ts', '@aws-sdk/client-kms', 'src/config.ts']],
      ['src/new-thing.ts', []],
      ['src/client/client-side.ts', ['src/format/stream-crypto.ts', 'src/keys/envelope-service.ts']],
      ['src/http/routes/keys.ts', ['src/client/inspect.ts']],
    ]);
    expect(violations(imports)).toEqual([
      'src/http/routes/stream.ts -> src/format/stream-crypto.ts: skips src/operations/',
      'src/http/routes/encrypt.ts -> src/keys/envelope-service.ts: skips src/operations/',
      'src/http/routes/encrypt.ts -> @aws-sdk/client-kms: skips src/operations/',
      'src/operations/operation.ts -> src/audit/event.ts: operations imports the higher layer audit',
      'src/kms/aws.ts -> src/http/problem.ts: kms imports the higher layer http',
      'src/new-thing.ts: in no layer (add it to LAYERS)',
      'src/client/client-side.ts -> src/keys/envelope-service.ts: the client imports only src/format/ of the service',
      'src/http/routes/keys.ts -> src/client/inspect.ts: routes imports the higher layer client',
    ]);
  });
});
