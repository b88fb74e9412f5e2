/** The two checks on an encryption context a caller sends: its size, and its match with a stored one. */
import { contextProblem, sameContext, toContext } from '../format/context.js';
import { EnvelopeError } from '../format/errors.js';
import type { EncryptionContext } from '../kms/provider.js';
import { ProblemError } from './errors.js';

export type { EncryptionContext };

/**
 * The caller's context as a null-prototype map within the KMS limits, or a 400 InvalidContext.
 * Schema validation (or the header parser) bounds each entry; this adds the totals KMS imposes.
 */
export function validContext(input: Readonly<Record<string, string>> | undefined): EncryptionContext {
  const context = toContext(input);
  const problem = contextProblem(context);
  if (problem) throw new ProblemError(400, 'InvalidContext', problem);
  return context;
}

/** A context the caller expects must equal the one stored in the ciphertext (422 otherwise). */
export function assertExpectedContext(expected: Readonly<Record<string, string>> | undefined, stored: EncryptionContext): void {
  if (expected !== undefined && !sameContext(toContext(expected), stored)) {
    throw new EnvelopeError('ContextMismatch', 'the given context differs from the one stored in the ciphertext');
  }
}
