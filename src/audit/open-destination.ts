/**
 * Turns the AUDIT_LOG setting into a synchronous destination plus where the chain starts,
 * and opens the file that replaces it after a rotation.
 *
 * - `stdout`: fd 1. A stream cannot be read back, so each process start begins a new chain.
 * - A path: created 0600 (parent directories 0700) and opened for appending; for a regular
 *   file the chain continues from its last line (resume.ts). Devices and FIFOs (/dev/null,
 *   /dev/full, a named pipe) start a new chain like stdout.
 *
 * One writer per file: two writers would interleave two chains and neither would verify, so
 * opening a regular file this process already has open is refused. (Across processes that
 * is up to deployment: give each instance its own file, e.g. named after INSTANCE_ID.)
 */
import { closeSync, fstatSync, mkdirSync, openSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { ChainLink } from './chain.js';
import { AuditWriteError } from './errors.js';
import { GENESIS, resumeChain, type ChainStart, type ResumeOptions } from './resume.js';
import { SyncLineDestination, type PathFile } from './sync-destination.js';

export const AUDIT_LOG_STDOUT = 'stdout';

/** Regular files open in this process, by device and inode (immune to symlinks and relative paths). */
const openFiles = new Set<string>();

export interface OpenedDestination {
  destination: SyncLineDestination;
  start: ChainStart;
}

export function openDestination(
  setting: string,
  onLine: (lineBytes: Buffer) => void,
  resumeOptions: ResumeOptions = {},
): OpenedDestination {
  if (setting === AUDIT_LOG_STDOUT) {
    return { destination: new SyncLineDestination({ fd: 1, ownsFd: false, onLine }), start: GENESIS };
  }

  const path = resolve(setting);
  let fd: number | undefined;
  try {
    const opened = openForAppend(path);
    fd = opened.fd;
    if (!opened.stat.isFile()) {
      return { destination: new SyncLineDestination({ fd, ownsFd: true, onLine }), start: GENESIS };
    }
    const start = resumeChain(fd, opened.stat.size, resumeOptions);
    const file = register(path, fd, opened.stat);
    return { destination: new SyncLineDestination({ file, onLine }), start };
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    throw new AuditWriteError(`cannot open audit log ${path}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
}

/**
 * Opens the file now at `path` (creating it if the rotation left none) to continue a chain
 * whose next line is `next`. The file must be empty (logrotate's `create`, or created here) or
 * end exactly where the chain stands (a copy of the previous file): anything else is another
 * file, and writing the chain's continuation into it would leave neither verifiable.
 */
export function openReplacement(path: string, next: ChainLink, resumeOptions: ResumeOptions = {}): PathFile {
  let fd: number | undefined;
  try {
    const opened = openForAppend(path);
    fd = opened.fd;
    if (!opened.stat.isFile()) throw new Error('no longer a regular file');
    if (opened.stat.size > 0) {
      const found = resumeChain(fd, opened.stat.size, resumeOptions);
      const continues =
        found.kind === 'continue' && found.link.sequence === next.sequence && found.link.previousHash === next.previousHash;
      if (!continues) {
        throw new Error(
          `it holds ${opened.stat.size} bytes that do not end where this log's chain stands ` +
            `(sequence ${next.sequence - 1}); move that file away and the log will reopen ${path}`,
        );
      }
    }
    return register(path, fd, opened.stat);
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    throw new AuditWriteError(`cannot reopen audit log ${path}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
}

function openForAppend(path: string): { fd: number; stat: Stats } {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  // a+: every write appends (O_APPEND); positional reads still work, for the tail.
  const fd = openSync(path, 'a+', 0o600);
  try {
    return { fd, stat: fstatSync(fd) };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

/** Claims the file for this process's single writer; throws if it is already open here. */
function register(path: string, fd: number, stat: Stats): PathFile {
  const key = `${stat.dev}:${stat.ino}`;
  if (openFiles.has(key)) throw new Error('already open in this process (one writer per audit file)');
  openFiles.add(key);
  return { fd, size: stat.size, path, dev: stat.dev, ino: stat.ino, release: () => openFiles.delete(key) };
}
