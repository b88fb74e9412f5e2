/** Copies what a single item learned onto the request's audit record. */
import type { AuditRecord } from '../audit-record.js';
import type { ItemNotes } from '../operations.js';

export function noteItem(record: AuditRecord, notes: ItemNotes, direction: 'encrypt' | 'decrypt'): void {
  const encrypting = direction === 'encrypt';
  record.requestParameters.keyId = notes.keyId;
  record.requestParameters.encryptionContext = notes.context;
  record.requestParameters.aadBytes = notes.aadBytes;
  if (encrypting) record.requestParameters.plaintextBytes = notes.plaintextBytes;
  else record.requestParameters.ciphertextBytes = notes.ciphertextBytes;
  record.ruleId = notes.ruleId;
  record.dataKey = notes.dataKey;
  record.responseElements = {
    keyId: notes.resolvedKeyId ?? notes.keyId,
    ...(encrypting ? { ciphertextBytes: notes.ciphertextBytes } : { plaintextBytes: notes.plaintextBytes }),
  };
}
