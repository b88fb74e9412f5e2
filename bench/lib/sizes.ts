/** The payload sizes of the HTTP cases (1) and the large-payload cases (4). */
import { KiB, MiB } from './constants.js';
import { largestPlaintextFor } from './bodies.js';

/** The service's default body limit, and the baselines'. */
const BODY_LIMIT_BYTES = 8 * MiB;

export interface Sizes {
  key: string;
  label: string;
  bytes: number;
}

export const HTTP_SIZES: Sizes[] = [
  { key: '1k', label: '1 KiB', bytes: KiB },
  { key: '64k', label: '64 KiB', bytes: 64 * KiB },
];

export function largeSizes(): Sizes[] {
  const max = largestPlaintextFor(BODY_LIMIT_BYTES);
  return [
    { key: '1m', label: '1 MiB', bytes: MiB },
    { key: 'max', label: `${(max / MiB).toFixed(2)} MiB (largest under the 8 MiB body limit)`, bytes: max },
  ];
}
