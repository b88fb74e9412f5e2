/**
 * Orders the files of one rotated audit log oldest first, from the names logrotate gives
 * them, so `audit:verify --sort` can take a shell glob (which sorts audit.log.10 before
 * audit.log.2). Numbered names (audit.log.2, audit.log.1, then audit.log) or dateext names
 * (audit.log-20261128, audit.log-20261129, then audit.log), each possibly ending in .gz.
 */
import { basename } from 'node:path';

interface Named {
  path: string;
  base: string;
  number?: number;
  date?: string;
}

export class RotatedOrderError extends Error {
  override readonly name = 'RotatedOrderError';
}

export function sortRotatedFiles(paths: readonly string[]): string[] {
  const named = paths.map(parseName);
  const bases = new Set(named.map((file) => file.base));
  if (bases.size > 1) {
    throw new RotatedOrderError(`--sort: the files belong to different logs (${[...bases].join(', ')}); verify each log on its own`);
  }
  if (named.some((file) => file.number !== undefined) && named.some((file) => file.date !== undefined)) {
    throw new RotatedOrderError('--sort: numbered and dated names mixed; give the files in order without --sort');
  }
  // Rotated files first (highest number, or earliest date, is oldest), the live file last.
  const group = (file: Named): number => (file.number !== undefined || file.date !== undefined ? 0 : 1);
  return [...named]
    .sort((left, right) => {
      if (group(left) !== group(right)) return group(left) - group(right);
      if (left.number !== undefined && right.number !== undefined) return right.number - left.number;
      const leftDate = left.date ?? '';
      const rightDate = right.date ?? '';
      return leftDate < rightDate ? -1 : leftDate > rightDate ? 1 : 0;
    })
    .map((file) => file.path);
}

function parseName(path: string): Named {
  const name = basename(path).replace(/\.gz$/, '');
  const prefix = path.slice(0, path.length - basename(path).length);
  const numbered = /^(.*)\.(\d+)$/.exec(name);
  if (numbered) return { path, base: prefix + (numbered[1] as string), number: Number(numbered[2]) };
  const dated = /^(.*)-(\d{8,14})$/.exec(name);
  if (dated) return { path, base: prefix + (dated[1] as string), date: dated[2] as string };
  return { path, base: prefix + name };
}
