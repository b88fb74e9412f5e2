/**
 * Turns the AUDIT_LOG setting into a synchronous destination plus where the chain starts.
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
import { closeSync, fstatSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { AuditWriteError } from './errors.js';
import { GENESIS, resumeChain, type ChainStart, type ResumeOptions } from './resume.js';
import { SyncLineDestination } from './sync-destination.js';

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
    return {
      destination: new SyncLineDestination({ fd: 1, regularFile: false, size: 0, ownsFd: false, onLine }),
      start: GENESIS,
    };
  }

  const path = resolve(setting);
  let fd: number | undefined;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    // a+: every write appends (O_APPEND); positional reads still work, for the tail.
    fd = openSync(path, 'a+', 0o600);
    const stat = fstatSync(fd);
    if (!stat.isFile()) {
      return {
        destination: new SyncLineDestination({ fd, regularFile: false, size: 0, ownsFd: true, onLine }),
        start: GENESIS,
      };
    }
    const key = `${stat.dev}:${stat.ino}`;
    if (openFiles.has(key)) throw new Error('already open in this process (one writer per audit file)');
    const start = resumeChain(fd, stat.size, resumeOptions);
    openFiles.add(key);
    const destination = new SyncLineDestination({
      fd,
      regularFile: true,
      size: stat.size,
      ownsFd: true,
      onLine,
      onClose: () => openFiles.delete(key),
    });
    return { destination, start };
  } catch (error) {
    if (fd !== undefined) closeSync(fd);
    throw new AuditWriteError(`cannot open audit log ${path}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
}
