/**
 * One KMS client, circuit breaker, call statistics and metrics per region, and a KeyProvider
 * that sends each call to the region of the key it names.
 *
 * A key ARN carries its region (`arn:aws:kms:REGION:…`), and KMS answers for a key only in
 * its own region, so a key set spanning regions needs a client per region. A region gets its
 * stack the first time a call names one of its keys, and only if a configured key set has a
 * key there (`allowed`): a ciphertext naming any other region is sent to the home region,
 * as before key sets, and cannot make the service open connections anywhere.
 *
 * Each region's breaker is its own: region A down opens A's breaker only, and calls to B's
 * keys go on. Aliases (ListAliases) are the home region's.
 */
import type { CircuitBreaker } from './circuit-breaker.js';
import type { KmsCallStats } from './call-stats.js';
import type { KeyProvider } from './provider.js';

export interface RegionalStack {
  region: string;
  /** The decorated provider: breaker -> call stats -> metrics -> the region's client. */
  kms: KeyProvider;
  circuit: CircuitBreaker;
  calls: KmsCallStats;
  /** The undecorated provider (closed at shutdown). */
  provider: KeyProvider;
}

export class RegionalKms {
  readonly #stacks = new Map<string, RegionalStack>();

  constructor(
    readonly home: RegionalStack,
    private readonly build: (region: string) => RegionalStack,
    /** Regions a configured key set has a key in (read at each call: key sets reload). */
    private readonly allowed: () => ReadonlySet<string>,
  ) {
    this.#stacks.set(home.region, home);
  }

  /** The region a call naming `keyId` goes to: its ARN's when allowed, else the home region. */
  regionOf(keyId: string): string {
    const region = arnRegion(keyId);
    return region !== undefined && (region === this.home.region || this.allowed().has(region)) ? region : this.home.region;
  }

  stackFor(keyId: string): RegionalStack {
    const region = this.regionOf(keyId);
    let stack = this.#stacks.get(region);
    if (!stack) {
      stack = this.build(region);
      this.#stacks.set(region, stack);
    }
    return stack;
  }

  /** True when the region of `keyId` fails calls fast right now (its breaker is open). */
  isDown(keyId: string): boolean {
    const stack = this.#stacks.get(this.regionOf(keyId));
    return stack !== undefined && stack.circuit.state === 'open';
  }

  /** The stacks built so far, home first. */
  stacks(): RegionalStack[] {
    return [...this.#stacks.values()];
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.stacks().map((stack) => stack.provider.close()));
  }

  /** Every call sent to the region of the key it names. */
  provider(): KeyProvider {
    const to = (keyId: string) => this.stackFor(keyId).kms;
    return {
      kind: this.home.kms.kind,
      generateDataKey: (keyId, context) => to(keyId).generateDataKey(keyId, context),
      decryptDataKey: (wrapped, keyId, context) => to(keyId).decryptDataKey(wrapped, keyId, context),
      reEncryptDataKey: (wrapped, source, sourceContext, destination, destinationContext) =>
        to(source).reEncryptDataKey(wrapped, source, sourceContext, destination, destinationContext),
      encryptDataKey: (plaintextKey, keyId, context) => to(keyId).encryptDataKey(plaintextKey, keyId, context),
      describeKey: (keyId) => to(keyId).describeKey(keyId),
      listAliases: () => this.home.kms.listAliases(),
      // The composition root closes every region's provider (closeAll).
      close: async () => {},
    };
  }
}

function arnRegion(keyId: string): string | undefined {
  if (!keyId.startsWith('arn:')) return undefined;
  const parts = keyId.split(':');
  return parts.length >= 6 && parts[2] === 'kms' && parts[3] ? parts[3] : undefined;
}
