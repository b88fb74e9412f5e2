/**
 * The fleet's two messages on Redis pub/sub, and their strict parsing: Redis is shared
 * infrastructure, so a message is data to check, never trusted as shaped. A command can only
 * ask a replica to drop cached keys or to re-read its own policy file: neither grants anything.
 */
import type { FleetAction, FleetOrigin, ReplicaResult } from '../operations/admin/fleet.js';

export const COMMAND_CHANNEL = 'envelope:fleet:commands';
export const ACK_CHANNEL = 'envelope:fleet:acks';

/** Bounds on what a command may carry (an evict names one key by a few names, one context). */
const MAX_KEY_NAMES = 8;
const MAX_NAME_CHARS = 2048;
const MAX_CONTEXT_ENTRIES = 64;
const MAX_CONTEXT_CHARS = 8192;
const ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface CommandMessage {
  type: 'command';
  id: string;
  from: string;
  action: FleetAction;
  origin: FleetOrigin;
}

export interface AckMessage {
  type: 'ack';
  id: string;
  result: ReplicaResult;
}

export function parseMessage(text: string): CommandMessage | AckMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isRecord(value) || typeof value.id !== 'string' || !ID.test(value.id)) return undefined;
  if (value.type === 'command') {
    const action = parseAction(value.action);
    const origin = parseOrigin(value.origin);
    if (!action || !origin || typeof value.from !== 'string' || !ID.test(value.from)) return undefined;
    return { type: 'command', id: value.id, from: value.from, action, origin };
  }
  if (value.type === 'ack') {
    const result = parseResult(value.result);
    return result ? { type: 'ack', id: value.id, result } : undefined;
  }
  return undefined;
}

function parseAction(value: unknown): FleetAction | undefined {
  if (!isRecord(value)) return undefined;
  if (value.kind === 'reload') return { kind: 'reload' };
  if (value.kind !== 'evict') return undefined;
  const action: FleetAction = { kind: 'evict' };
  if (value.all !== undefined) {
    if (value.all !== true || value.keyNames !== undefined || value.context !== undefined) return undefined;
    return { kind: 'evict', all: true };
  }
  if (value.keyNames !== undefined) {
    const names = value.keyNames;
    if (!Array.isArray(names) || names.length === 0 || names.length > MAX_KEY_NAMES) return undefined;
    if (!names.every((name): name is string => typeof name === 'string' && name.length > 0 && name.length <= MAX_NAME_CHARS)) return undefined;
    action.keyNames = names;
  }
  if (value.context !== undefined) {
    const context = value.context;
    if (!isRecord(context)) return undefined;
    const entries = Object.entries(context);
    if (entries.length > MAX_CONTEXT_ENTRIES || !entries.every(([, v]) => typeof v === 'string')) return undefined;
    if (entries.reduce((sum, [k, v]) => sum + k.length + String(v).length, 0) > MAX_CONTEXT_CHARS) return undefined;
    action.context = Object.assign(Object.create(null) as Record<string, string>, context as Record<string, string>);
  }
  // An evict that names nothing would drop everything: only `all: true` says that.
  return action.keyNames === undefined && action.context === undefined ? undefined : action;
}

function parseOrigin(value: unknown): FleetOrigin | undefined {
  if (!isRecord(value)) return undefined;
  const { requestId, principalType, principalId } = value;
  if (typeof requestId !== 'string' || !ID.test(requestId)) return undefined;
  if (principalType !== 'dev-token' && principalType !== 'api-key' && principalType !== 'jwt') return undefined;
  if (typeof principalId !== 'string' || principalId.length === 0 || principalId.length > 256) return undefined;
  return { requestId, principalType, principalId };
}

function parseResult(value: unknown): ReplicaResult | undefined {
  if (!isRecord(value) || typeof value.instanceId !== 'string' || !ID.test(value.instanceId) || typeof value.ok !== 'boolean') return undefined;
  const result: ReplicaResult = { instanceId: value.instanceId, ok: value.ok };
  if (typeof value.dropped === 'number' && Number.isInteger(value.dropped) && value.dropped >= 0) result.dropped = value.dropped;
  if (typeof value.digest === 'string' && value.digest.length <= 128) result.digest = value.digest;
  if (typeof value.errorCode === 'string' && /^[A-Za-z]{1,64}$/.test(value.errorCode)) result.errorCode = value.errorCode;
  return result;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
