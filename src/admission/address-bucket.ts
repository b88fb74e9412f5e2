/**
 * The unit failed authentications are counted by: an IPv4 address, or an IPv6 /64. One host
 * usually holds a whole /64 (SLAAC, privacy addresses, a cloud instance's prefix), so counting
 * single IPv6 addresses would give it 2^64 fresh budgets.
 */
import { isIPv4, isIPv6 } from 'node:net';

export function addressBucket(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped?.[1]) return mapped[1];
  if (!isIPv6(ip) || isIPv4(ip)) return ip;
  const [head = '', tail] = ip.split('%', 1)[0]!.toLowerCase().split('::');
  // An embedded IPv4 tail (…:1.2.3.4) stands for two groups, both in the host half.
  const split = (part: string) => (part ? part.split(':').flatMap((group) => (group.includes('.') ? ['0', '0'] : [group])) : []);
  const left = split(head);
  const right = split(tail ?? '');
  const groups = [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups.slice(0, 4).map((group) => group.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
