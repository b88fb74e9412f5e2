/**
 * The service's version, read once from package.json (shown in the OpenAPI document and
 * sent to KMS in the user agent). Works from src/ (tsx, vitest) and dist/src/ (built).
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

function readVersion(): string {
  for (const relative of ['../package.json', '../../package.json']) {
    const path = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(path)) {
      const manifest = JSON.parse(readFileSync(path, 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'envelope-service' && manifest.version) return manifest.version;
    }
  }
  return '0.0.0';
}

export const SERVICE_VERSION = readVersion();
