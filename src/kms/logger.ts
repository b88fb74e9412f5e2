/**
 * The little a provider logs: startup facts (keystore created, endpoint in use) and warnings.
 * Structurally compatible with pino's Logger, so the app passes its own logger in; tests pass
 * nothing. Providers never log key material, plaintext or encryption-context values.
 */
export interface ProviderLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export const silentLogger: ProviderLogger = {
  info() {},
  warn() {},
};
