/**
 * Cache state (`admin:read`): per cache, per KMS key and per principal share, the counters an
 * operator needs in an incident. Never a key, never a context value: contexts are counted only
 * (a context can hold tenant or customer identifiers, and admin:read is not a grant on them).
 */
import type { CacheView } from '../../keys/envelope-service.js';
import { withFacts } from '../operation.js';
import { authorizeAdmin, type AdminCaller, type AdminDeps } from './admin.js';

export function cacheState(deps: AdminDeps, caller: AdminCaller) {
  return withFacts(caller, async (facts) => {
    authorizeAdmin(deps, caller, 'admin:read', facts);
    const caches = deps.envelope.cacheViews().map(summarize);
    facts.responseElements = { cachedKeys: caches.reduce((sum, cache) => sum + cache.entries, 0) };
    return { caches };
  });
}

function summarize(view: CacheView) {
  const { hits, misses } = view.counts;
  const byKey = new Map<string, { entries: number; contexts: Set<string>; oldestAgeMs: number; messages: number; bytes: number; hits: number; busiestMessages: number; busiestBytes: number }>();
  const byOwner = new Map<string, number>();
  for (const entry of view.entries) {
    const key = byKey.get(entry.keyArn) ?? { entries: 0, contexts: new Set(), oldestAgeMs: 0, messages: 0, bytes: 0, hits: 0, busiestMessages: 0, busiestBytes: 0 };
    key.entries += 1;
    key.contexts.add(entry.contextKey);
    key.oldestAgeMs = Math.max(key.oldestAgeMs, entry.ageMs);
    key.messages += entry.messages;
    key.bytes += entry.bytes;
    key.hits += entry.hits;
    key.busiestMessages = Math.max(key.busiestMessages, entry.messages);
    key.busiestBytes = Math.max(key.busiestBytes, entry.bytes);
    byKey.set(entry.keyArn, key);
    byOwner.set(entry.owner, (byOwner.get(entry.owner) ?? 0) + 1);
  }
  const fairShare = byOwner.size === 0 ? view.limits.capacity : Math.floor(view.limits.capacity / byOwner.size);
  return {
    kind: view.kind,
    limits: {
      capacity: view.limits.capacity,
      maxAgeMs: view.limits.maxAgeMs,
      ...(view.kind === 'encrypt' ? { maxMessages: view.limits.maxMessages, maxBytes: view.limits.maxBytes } : {}),
    },
    entries: view.entries.length,
    hits,
    misses,
    hitRate: hits + misses === 0 ? 0 : hits / (hits + misses),
    keys: [...byKey]
      .map(([keyArn, key]) => ({
        keyArn,
        entries: key.entries,
        contexts: key.contexts.size,
        oldestAgeMs: key.oldestAgeMs,
        messages: key.messages,
        bytes: key.bytes,
        hits: key.hits,
        busiestEntry: { messages: key.busiestMessages, bytes: key.busiestBytes },
      }))
      .sort((a, b) => a.keyArn.localeCompare(b.keyArn)),
    principals: [...byOwner]
      .map(([principal, entries]) => ({ principal: principal || 'unowned', entries, fairShare }))
      .sort((a, b) => b.entries - a.entries || a.principal.localeCompare(b.principal)),
  };
}
