/**
 * The user agent this service adds to every KMS call.
 *
 * CloudTrail records the caller's userAgent on each KMS event, so naming the service, its
 * version and the instance lets an auditor tell which deployment (and which pod) made a call,
 * on top of the request id the audit log already joins on.
 * Result: `envelope-service/<version> instance/<INSTANCE_ID or hostname>`, which the SDK
 * appends to its own `aws-sdk-js/…` agent.
 */
import { hostname } from 'node:os';
import { SERVICE_VERSION } from '../version.js';

export const SERVICE_NAME = 'envelope-service';

/** SDK v3 `customUserAgent` pairs: [[name, version]]. */
export type UserAgentPairs = [string, string][];

export function serviceUserAgent(instanceId?: string): UserAgentPairs {
  return [
    [SERVICE_NAME, SERVICE_VERSION],
    ['instance', sanitizeToken(instanceId ?? hostname())],
  ];
}

/** User-agent tokens allow a narrow alphabet; hostnames are usually within it already. */
function sanitizeToken(value: string): string {
  const cleaned = value.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 64);
  return cleaned.length > 0 ? cleaned : 'unknown';
}
