// Rotates one pod's audit log by size, in a sidecar running the service's own image (node, no
// dependencies). Rotation is a rename to AUDIT_LOG-YYYYMMDDHHMMSS (UTC), the dated form
// `audit:verify --sort` orders; the service follows its AUDIT_LOG path and reopens it at its next
// write or readiness check, continuing the hash chain in the new file (docs/AUDIT.md, "Rotation").
// Never copy-and-truncate: events written in between would be lost.
//
// Pruning deletes audit records, so it is off unless PRUNE_ROTATED=true: then, beyond the
// newest KEEP_ROTATED rotated files, a rotated file is deleted once it is PRUNE_MIN_AGE_SECONDS
// old (time since its last write). Nothing here knows whether a shipper has sent it: turn it on
// only with a shipper that keeps up. Off, rotated files stay until the pod and its volume go.
//
// Settings (environment): AUDIT_LOG (the live file), ROTATE_BYTES, PRUNE_ROTATED (true|false,
// default false), KEEP_ROTATED, PRUNE_MIN_AGE_SECONDS, CHECK_INTERVAL_SECONDS. Logs one JSON
// line per action on stdout.
import { existsSync, readdirSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

function setting(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') {
    if (fallback === undefined) throw new Error(`${name} is required`);
    return fallback;
  }
  return raw;
}

function positiveNumber(name, fallback) {
  const value = Number(setting(name, fallback));
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a number >= 0`);
  return value;
}

function flag(name) {
  const value = setting(name, 'false');
  if (value !== 'true' && value !== 'false') throw new Error(`${name} must be true or false`);
  return value === 'true';
}

const live = setting('AUDIT_LOG');
const rotateBytes = positiveNumber('ROTATE_BYTES');
const prune = flag('PRUNE_ROTATED');
const keep = positiveNumber('KEEP_ROTATED', '4');
const pruneMinAgeMs = positiveNumber('PRUNE_MIN_AGE_SECONDS', '600') * 1000;
const intervalMs = Math.max(positiveNumber('CHECK_INTERVAL_SECONDS', '10'), 0.05) * 1000;
const dir = dirname(live);
const rotatedName = new RegExp(`^${basename(live).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-(\\d{14})$`);

function log(fields) {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), component: 'audit-rotation', ...fields })}\n`);
}

function stamp(date) {
  return date.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

function rotateIfDue() {
  let size;
  try {
    size = statSync(live).size;
  } catch (error) {
    if (error.code === 'ENOENT') return; // not written yet, or just rotated and not reopened
    throw error;
  }
  if (size < rotateBytes) return;
  const target = `${live}-${stamp(new Date())}`;
  // Two rotations within one second: the next check takes it.
  if (existsSync(target)) return;
  renameSync(live, target);
  log({ msg: 'audit log rotated', file: target, bytes: size });
}

function pruneOld() {
  const rotated = readdirSync(dir)
    .filter((name) => rotatedName.test(name))
    .sort()
    .reverse(); // newest first
  const now = Date.now();
  for (const name of rotated.slice(keep)) {
    const path = join(dir, name);
    const age = now - statSync(path).mtimeMs;
    if (age < pruneMinAgeMs) continue;
    unlinkSync(path);
    log({ msg: 'rotated audit log removed', file: path, ageSeconds: Math.round(age / 1000) });
  }
}

function tick() {
  try {
    rotateIfDue();
    if (prune) pruneOld();
  } catch (error) {
    log({ msg: 'audit rotation failed', error: String(error?.message ?? error) });
  }
}

log({ msg: 'audit rotation started', file: live, rotateBytes, prune, ...(prune && { keep, pruneMinAgeSeconds: pruneMinAgeMs / 1000 }) });
const timer = setInterval(tick, intervalMs);
tick();
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    clearInterval(timer);
    process.exit(0);
  });
}
