/**
 * `npm run audit:verify -- [--strict] [--anchor=SEQUENCE:SHA256] [--after=SEQUENCE:SHA256|any] [--sort]
 *   [--public-key=PEM | --kms-key-id=KEY] [--digests=FILE] [--instance=NAME] [--replica=FILE,FILE...]... FILE...`
 *
 * Exit codes: 0 chain intact, 1 verification failed (the first bad line is named),
 * 2 usage error or the file cannot be read; with an expected instance (--digests, --instance):
 * 3 the log is empty, 4 it is another instance's log, 5 it holds none of the digest file's checkpoints.
 */
import { readFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { ChainHead } from '../audit/chain.js';
import { RotatedOrderError, sortRotatedFiles } from '../audit/rotated-order.js';
import { formatVerifyResult, verifyAuditLogs } from '../verifier/verify.js';
import { loadPublicKey } from '../audit/checkpoint.js';
import { readFileSet } from '../audit/lines.js';
import { MAX_LINE_BYTES } from '../audit/resume.js';
import {
  digestInstances,
  formatCheckpointResult,
  parseDigestFile,
  verifyCheckpoints,
  type CheckpointProblem,
  type DigestRecord,
} from '../verifier/verify-checkpoints.js';
import { isEntryPoint } from './entry-point.js';

const USAGE = `usage: npm run audit:verify -- [--strict] [--anchor=SEQUENCE:SHA256] [--after=SEQUENCE:SHA256|any] [--sort] FILE...

Verifies the hash chain of an audit log written by the envelope service. Several FILEs are
the files of one rotated log, oldest first (audit.log.2 audit.log.1 audit.log); each must
continue the one before it, so a missing or cut file fails. *.gz files are read decompressed.
  --strict                  also fail when the chain was resumed after a damaged line (crash mid-write)
  --anchor=SEQUENCE:SHA256  a chain head published earlier: the event with that sequence must be
                            in the files with that hash (catches a truncated or rewritten tail)
  --after=SEQUENCE:SHA256   the first file continues this head (the "head:" printed when the older,
                            since removed, files were verified); "any" accepts any start and prints it
  --sort                    order the FILEs as logrotate names them (a shell glob: audit.log*)
  --public-key=PEM          also verify the signed checkpoints with this public key (PEM file)
  --kms-key-id=KEY          the same, with the public key fetched once by KMS GetPublicKey
                            (AWS_REGION and the SDK's credentials; KMS_ENDPOINT if set)
  --digests=FILE            the AUDIT_DIGEST_FILE copy: each of its checkpoints must be in the log
                            (catches a truncated or rewritten tail that crossed a checkpoint); the
                            log must be the instance the digest file names (--instance if several;
                            with --replica, every instance it names must be given once)
  --instance=NAME           the instance the checkpoints must name (default: the digest file's,
                            else the first checkpoint's)
  --replica=FILE,FILE...    one replica's files, oldest first; repeat for each replica (then no FILE)
Exit codes: 0 intact, 1 verification failed, 2 usage error or unreadable file; with --digests or
--instance also 3 the log holds no event, 4 it is another instance's log, 5 it holds none of the
digest file's checkpoints.`;

/** Verdicts about which log was given, rather than about tampering inside it. */
const EXIT_CODES: Partial<Record<CheckpointProblem, number>> = { 'empty-log': 3, 'other-instance': 4, 'no-digest-checkpoint': 5 };

const ANCHOR = /^(\d{1,15}):([0-9a-f]{64})$/;

export interface CliOutput {
  out: (text: string) => void;
  err: (text: string) => void;
}

const processOutput: CliOutput = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
};

export async function main(argv: readonly string[], output: CliOutput = processOutput): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        strict: { type: 'boolean' },
        anchor: { type: 'string' },
        after: { type: 'string' },
        sort: { type: 'boolean' },
        'public-key': { type: 'string' },
        'kms-key-id': { type: 'string' },
        digests: { type: 'string' },
        instance: { type: 'string' },
        replica: { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    output.err(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    output.out(USAGE);
    return 0;
  }
  const replicas = values.replica ?? [];
  if ((positionals.length === 0) === (replicas.length === 0)) {
    output.err(replicas.length > 0 ? `give the files either as --replica or as FILE, not both\n${USAGE}` : USAGE);
    return 2;
  }
  const groups: string[][] = [];
  for (const group of replicas.length > 0 ? replicas.map((list) => list.split(',').filter(Boolean)) : [positionals]) {
    let files = group;
    if (values.sort) {
      try {
        files = sortRotatedFiles(group);
      } catch (error) {
        if (!(error instanceof RotatedOrderError)) throw error;
        output.err(`${error.message}\n${USAGE}`);
        return 2;
      }
    }
    groups.push(files);
  }
  const allFiles = groups.flat();
  if (new Set(allFiles).size !== allFiles.length) {
    output.err(`a file is given twice\n${USAGE}`);
    return 2;
  }
  if (values['public-key'] !== undefined && values['kms-key-id'] !== undefined) {
    output.err(`give --public-key or --kms-key-id, not both\n${USAGE}`);
    return 2;
  }
  if ((values.digests !== undefined || values.instance !== undefined) && values['public-key'] === undefined && values['kms-key-id'] === undefined) {
    output.err(`--digests and --instance need --public-key or --kms-key-id\n${USAGE}`);
    return 2;
  }
  let publicKey: KeyObject | undefined;
  let digests: DigestRecord[] | undefined;
  try {
    if (values['public-key'] !== undefined) publicKey = loadPublicKey(readFileSync(values['public-key'], 'utf8'));
    if (values['kms-key-id'] !== undefined) publicKey = loadPublicKey(await fetchKmsPublicKey(values['kms-key-id']));
    if (values.digests !== undefined) digests = parseDigestFile(readFileSync(values.digests, 'utf8'));
  } catch (error) {
    output.err(`cannot load the public key or digest file: ${(error as Error).message}`);
    return 2;
  }
  // Replicas share the signing key: the instance comes from the digest file, never from the log checked.
  let instance = values.instance;
  let instanceOneOf: Set<string> | undefined;
  if (digests) {
    const named = digestInstances(digests);
    if (named.length === 0) {
      output.err(`the digest file holds no checkpoint: nothing to check the log against`);
      return 2;
    }
    if (instance !== undefined && !named.includes(instance)) {
      output.err(`the digest file holds no checkpoint of instance ${instance} (it holds ${named.join(', ')})`);
      return 2;
    }
    if (instance === undefined && groups.length > 1) instanceOneOf = new Set(named);
    else if (instance === undefined && named.length === 1) instance = named[0];
    else if (instance === undefined) {
      output.err(`the digest file holds checkpoints of several instances (${named.join(', ')}): give --instance\n${USAGE}`);
      return 2;
    }
  }
  const anchor = values.anchor === undefined ? undefined : parseHead(values.anchor);
  if (anchor === null) {
    output.err(`bad --anchor ${values.anchor ?? ''}: want SEQUENCE:SHA256 (64 lowercase hex)\n${USAGE}`);
    return 2;
  }
  const after = values.after === undefined || values.after === 'any' ? values.after : parseHead(values.after);
  if (after === null) {
    output.err(`bad --after ${values.after ?? ''}: want SEQUENCE:SHA256 (64 lowercase hex) or any\n${USAGE}`);
    return 2;
  }

  const instances = new Map<string, string>();
  let exitCode = 0;
  // Tampering (1) outranks which-log verdicts (3..5).
  const fail = (code: number) => {
    exitCode = exitCode === 0 ? code : Math.min(exitCode, code);
  };
  for (const files of groups) {
    const prefix = groups.length > 1 ? `${files.join(', ')}: ` : '';
    let result;
    try {
      result = await verifyAuditLogs(files, {
        strict: values.strict === true,
        ...(anchor && { anchor }),
        ...(after !== undefined && { after }),
      });
    } catch (error) {
      output.err(`cannot read ${files.join(', ')}: ${(error as Error).message}`);
      return 2;
    }
    const report = formatVerifyResult(result);
    if (!result.ok) {
      output.err(prefix + report);
      fail(1);
      continue;
    }
    if (!publicKey) {
      output.out(prefix + report);
      continue;
    }
    let signed;
    try {
      signed = await verifyCheckpoints(readFileSet(files, MAX_LINE_BYTES), {
        publicKey,
        ...(instance !== undefined && { instance }),
        ...(instanceOneOf && { instanceOneOf }),
        ...(digests && { digests }),
      });
    } catch (error) {
      output.err(`cannot read ${files.join(', ')}: ${(error as Error).message}`);
      return 2;
    }
    if (signed.ok && signed.instance !== null) {
      const other = instances.get(signed.instance);
      if (other !== undefined) {
        output.err(`${prefix}FAIL: the checkpoints of ${files.join(', ')} and of ${other} name the same instance ${signed.instance}: one of them is a copy`);
        fail(1);
        continue;
      }
      instances.set(signed.instance, files.join(', '));
    }
    const signedReport = formatCheckpointResult(signed);
    if (signed.ok) output.out(`${prefix}${report}\n${signedReport}`);
    else {
      output.err(`${prefix}${signedReport}\n(the hash chain itself is intact: ${report.split('\n')[0] ?? ''})`);
      fail(EXIT_CODES[signed.problem] ?? 1);
    }
  }
  for (const name of instanceOneOf ?? []) {
    if (instances.has(name)) continue;
    output.err(`FAIL: the digest file holds checkpoints of instance ${name}, but no log given is instance ${name}'s`);
    fail(5);
  }
  return exitCode;
}

/** GetPublicKey once, with the SDK's default credentials, AWS_REGION and KMS_ENDPOINT. */
async function fetchKmsPublicKey(keyId: string): Promise<string> {
  const { KMSClient } = await import('@aws-sdk/client-kms');
  const { fetchPublicKeyPem } = await import('../audit/signer-aws.js');
  const endpoint = process.env.KMS_ENDPOINT;
  const client = new KMSClient({ ...(endpoint ? { endpoint } : {}), ...(process.env.AWS_REGION ? { region: process.env.AWS_REGION } : {}) });
  try {
    return await fetchPublicKeyPem(client, keyId);
  } finally {
    client.destroy();
  }
}

/** SEQUENCE:SHA256 as a chain head, or null if malformed. */
function parseHead(text: string): ChainHead | null {
  const match = ANCHOR.exec(text);
  return match ? { sequence: Number(match[1]), hash: match[2] as string } : null;
}

if (isEntryPoint(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
