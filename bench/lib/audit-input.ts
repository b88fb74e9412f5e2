/** The audit event of one 1 KiB encrypt, as the HTTP layer hands it to the audit log: the in-process audit commands write it. */
import type { AuditEventInput } from '../../src/audit/event.js';

export const ENCRYPT_AUDIT_INPUT: AuditEventInput = {
  eventName: 'Encrypt',
  userIdentity: { type: 'api-key', principalId: 'bench-service', ruleId: 'bench-encrypt' },
  sourceIPAddress: '127.0.0.1',
  userAgent: 'autocannon/7.15.0',
  requestID: '6c2b6a8e-1f0e-4b8e-9a55-0c9a3f1b7d21',
  httpStatus: 200,
  requestParameters: { keyId: 'alias/default', encryptionContext: { tenant: 'bench', purpose: 'bench' }, plaintextBytes: 1024 },
  responseElements: { keyId: 'arn:aws:kms:local:000000000000:key/0e4c1f5e-3d9b-4a3e-9c57-5b1f3f0d2a11', ciphertextBytes: 1488 },
  additionalEventData: {
    dataKeyId: '0123456789abcdef0123456789abcdef',
    cacheHit: true,
    coalesced: false,
    kmsRequestIds: ['d1f9c2a4-6a3e-4bde-8d7e-4b3f3f6f1a0b'],
    decision: 'allow',
  },
};
