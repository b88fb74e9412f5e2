/**
 * Signed checkpoints: the record format, the exact bytes that are signed, and the check of
 * a signature. Shared by the writer (checkpointer.ts) and the verifier (verify-checkpoints.ts).
 *
 * A checkpoint is an AuditCheckpoint service event in the chain. Its `statement` says: this
 * instance wrote the events with sequences firstSequence..lastSequence, the last of them
 * hashing to headHash, after the checkpoint whose statement hashes to previousDigest. The
 * signed message is the statement serialized as compact JSON in the field order below (what
 * `jq -cj .serviceEventDetails.statement` prints), and KMS signs its SHA-256. Since the
 * statement holds the head hash, and every line holds the hash of the one before, one
 * signature vouches for every byte of every line it covers.
 */
import { createHash, createPublicKey, constants, verify, type KeyObject } from 'node:crypto';
import { CHECKPOINT_SIGNING_ALGORITHMS, type CheckpointSigningAlgorithm } from './signer.js';

export const CHECKPOINT_EVENT_NAME = 'AuditCheckpoint';
export const CHECKPOINT_FORMAT = 'envelope-service/audit-checkpoint/1';

/** The signed part of a checkpoint. */
export interface CheckpointStatement {
  format: typeof CHECKPOINT_FORMAT;
  /** INSTANCE_ID (or the host name): whose chain this is. */
  instance: string;
  firstSequence: number;
  lastSequence: number;
  /** SHA-256 (hex) of the line with sequence lastSequence. */
  headHash: string;
  /** The covered events were written after startTime and up to endTime (ISO 8601). */
  startTime: string;
  endTime: string;
  /** lastSequence - firstSequence + 1. */
  eventCount: number;
  /** SHA-256 (hex) of the previous checkpoint's statement; null when a series starts. */
  previousDigest: string | null;
  /** The signing key as configured (AUDIT_SIGNING_KEY_ID) and the algorithm. */
  keyId: string;
  algorithm: CheckpointSigningAlgorithm;
}

/** serviceEventDetails of an AuditCheckpoint event (and one line of AUDIT_DIGEST_FILE). */
export interface CheckpointDetails {
  statement: CheckpointStatement;
  /** SHA-256 (hex) of the signed message: what KMS signed. */
  digest: string;
  /** Base64 signature. */
  signature: string;
  /** The key that signed, as an ARN (from KMS's answer). */
  keyArn: string;
  kmsRequestId: string;
}

const HASH = /^[0-9a-f]{64}$/;

/** The exact bytes that are signed. Field order is fixed here, never taken from the input. */
export function statementMessage(statement: CheckpointStatement): Buffer {
  const ordered: CheckpointStatement = {
    format: statement.format,
    instance: statement.instance,
    firstSequence: statement.firstSequence,
    lastSequence: statement.lastSequence,
    headHash: statement.headHash,
    startTime: statement.startTime,
    endTime: statement.endTime,
    eventCount: statement.eventCount,
    previousDigest: statement.previousDigest,
    keyId: statement.keyId,
    algorithm: statement.algorithm,
  };
  return Buffer.from(JSON.stringify(ordered), 'utf8');
}

export function statementDigest(statement: CheckpointStatement): string {
  return createHash('sha256').update(statementMessage(statement)).digest('hex');
}

/** Parses serviceEventDetails into checkpoint details; a string saying what is wrong otherwise. */
export function parseCheckpointDetails(value: unknown): CheckpointDetails | string {
  const details = asRecord(value);
  if (!details) return 'serviceEventDetails is not an object';
  const statement = asRecord(details.statement);
  if (!statement) return 'no statement';
  const s = statement;
  const isCount = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (s.format !== CHECKPOINT_FORMAT) return `statement.format is not ${CHECKPOINT_FORMAT}`;
  if (typeof s.instance !== 'string' || s.instance.length === 0) return 'invalid statement.instance';
  if (!isCount(s.firstSequence) || !isCount(s.lastSequence) || !isCount(s.eventCount)) return 'invalid sequence range';
  if ((s.lastSequence as number) < (s.firstSequence as number)) return 'lastSequence before firstSequence';
  if (s.eventCount !== (s.lastSequence as number) - (s.firstSequence as number) + 1) return 'eventCount does not match the range';
  if (typeof s.headHash !== 'string' || !HASH.test(s.headHash)) return 'invalid statement.headHash';
  if (typeof s.startTime !== 'string' || typeof s.endTime !== 'string') return 'invalid time range';
  if (s.previousDigest !== null && (typeof s.previousDigest !== 'string' || !HASH.test(s.previousDigest))) {
    return 'invalid statement.previousDigest';
  }
  if (typeof s.keyId !== 'string') return 'invalid statement.keyId';
  if (!CHECKPOINT_SIGNING_ALGORITHMS.includes(s.algorithm as CheckpointSigningAlgorithm)) return 'unknown statement.algorithm';
  if (typeof details.signature !== 'string' || typeof details.keyArn !== 'string') return 'no signature';
  return {
    statement: statement as unknown as CheckpointStatement,
    digest: typeof details.digest === 'string' ? details.digest : '',
    signature: details.signature,
    keyArn: details.keyArn,
    kmsRequestId: typeof details.kmsRequestId === 'string' ? details.kmsRequestId : '',
  };
}

/** True when `details.signature` is a valid signature of the statement under `publicKey`. */
export function checkpointSignatureValid(details: CheckpointDetails, publicKey: KeyObject): boolean {
  const message = statementMessage(details.statement);
  const signature = Buffer.from(details.signature, 'base64');
  try {
    switch (details.statement.algorithm) {
      case 'ECDSA_SHA_256':
        return publicKey.asymmetricKeyType === 'ec' && verify('sha256', message, { key: publicKey, dsaEncoding: 'der' }, signature);
      case 'RSASSA_PKCS1_V1_5_SHA_256':
        return publicKey.asymmetricKeyType === 'rsa' && verify('sha256', message, { key: publicKey, padding: constants.RSA_PKCS1_PADDING }, signature);
      case 'RSASSA_PSS_SHA_256':
        return (
          publicKey.asymmetricKeyType === 'rsa' &&
          verify('sha256', message, { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, signature)
        );
    }
  } catch {
    return false;
  }
}

/** A public key from PEM (SPKI) or DER bytes. */
export function loadPublicKey(pemOrDer: string | Buffer): KeyObject {
  if (typeof pemOrDer === 'string' || pemOrDer.includes('-----BEGIN')) return createPublicKey(pemOrDer);
  return createPublicKey({ key: pemOrDer, format: 'der', type: 'spki' });
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}
