/**
 * `npm run keys -- <command>`: administers the local provider's keystore (LOCAL_KEYSTORE),
 * the embedded default key provider. AWS KMS keys are administered with AWS's own tools.
 *
 * The keystore is opened exactly as the service opens it (same location, ownership and mode
 * checks; created with a default key if missing) and every change is written atomically.
 * The service reads the keystore once at start: a running service sees a change only after
 * a restart, and this command prints that reminder.
 *
 * Exit codes: 0 done, 1 the keystore or the change was refused, 2 usage error.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { KmsError, isKmsError } from '../kms/errors.js';
import { isValidAliasName } from '../kms/local-keystore.js';
import { KeystoreError, LocalKeyProvider, type LocalKeyInfo } from '../kms/local.js';
import { isEntryPoint } from './entry-point.js';

const USAGE = `usage: npm run keys -- <command> [options]

Administers the local key provider's keystore: LOCAL_KEYSTORE (default .data/keystore.json),
or --keystore PATH. A missing keystore is created with a new key behind alias/default, as the
service would create it. KEY is a key id or key ARN (not an alias), as in AWS KMS.

Commands:
  list                        keys with their state, creation date and aliases
  create [--alias NAME]       a new key (and an alias pointing at it)
  alias NAME KEY [--update]   points the new alias NAME (alias/...) at KEY; --update moves an existing one
  disable KEY                 the key refuses all use until enabled
  enable KEY                  the key can be used again
  schedule-deletion KEY [--days N]
                              the key refuses all use, pending deletion in N days (7-30, default 30);
                              this provider never deletes key material
  cancel-deletion KEY         the key comes back disabled

The service reads the keystore when it starts: restart it to apply a change.
Exit codes: 0 done, 1 refused (bad keystore, unknown key, invalid state), 2 usage error.`;

export interface CliOutput {
  out: (text: string) => void;
  err: (text: string) => void;
}

const processOutput: CliOutput = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
};

/** Operands each command takes (besides options). */
const OPERANDS: Readonly<Record<string, readonly string[]>> = {
  list: [],
  create: [],
  alias: ['NAME', 'KEY'],
  disable: ['KEY'],
  enable: ['KEY'],
  'schedule-deletion': ['KEY'],
  'cancel-deletion': ['KEY'],
};

const RESTART = 'restart the service to apply the change (it reads the keystore when it starts)';

class UsageError extends Error {}

const ALIAS_RULE = 'alias names are alias/ followed by 1-250 of A-Z a-z 0-9 / _ - (alias/aws/ is reserved)';

export async function main(argv: readonly string[], output: CliOutput = processOutput): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        keystore: { type: 'string' },
        alias: { type: 'string' },
        update: { type: 'boolean' },
        days: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    output.err(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    output.out(USAGE);
    return 0;
  }
  const [command, ...operands] = positionals;
  try {
    checkUsage(command, operands, values);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    output.err(`${error.message}\n\n${USAGE}`);
    return 2;
  }

  let provider: LocalKeyProvider | undefined;
  try {
    const path = values.keystore ?? keystoreFromEnvironment();
    provider = new LocalKeyProvider({ path, logger: { info: (_facts, msg) => output.err(`${msg ?? ''}: ${path}`), warn: () => {} } });
    output.out(await run(provider, command as string, operands, values));
    return 0;
  } catch (error) {
    if (error instanceof KeystoreError || isKmsError(error)) {
      output.err(`refused: ${error.message}`);
      return 1;
    }
    throw error;
  } finally {
    await provider?.close();
  }
}

interface Options {
  alias?: string | undefined;
  update?: boolean | undefined;
  days?: string | undefined;
}

function checkUsage(command: string | undefined, operands: string[], values: Options): void {
  if (command === undefined) throw new UsageError('no command given');
  const expected = OPERANDS[command];
  if (!expected) throw new UsageError(`unknown command "${command}"`);
  if (operands.length !== expected.length) {
    throw new UsageError(`${command} takes ${expected.length === 0 ? 'no operands' : expected.join(' ')}`);
  }
  if (values.alias !== undefined) {
    if (command !== 'create') throw new UsageError('--alias is an option of create');
    if (!isValidAliasName(values.alias)) throw new UsageError(ALIAS_RULE);
  }
  if (command === 'alias' && !isValidAliasName(operands[0] ?? '')) throw new UsageError(ALIAS_RULE);
  if (values.update && command !== 'alias') throw new UsageError('--update is an option of alias');
  if (values.days !== undefined) {
    if (command !== 'schedule-deletion') throw new UsageError('--days is an option of schedule-deletion');
    if (!/^\d{1,2}$/.test(values.days)) throw new UsageError('--days must be a whole number of days from 7 to 30');
  }
}

/** The keystore the service would open, from the same variable and default. */
function keystoreFromEnvironment(): string {
  const configured = process.env.LOCAL_KEYSTORE;
  return loadConfig(configured ? { LOCAL_KEYSTORE: configured } : {}).LOCAL_KEYSTORE;
}

async function run(provider: LocalKeyProvider, command: string, operands: string[], values: Options): Promise<string> {
  const [first = '', second = ''] = operands;
  switch (command) {
    case 'list':
      return listing(provider);
    case 'create': {
      // Checked first, so that a taken alias does not leave a new key behind.
      const taken = values.alias !== undefined && (await provider.listAliases()).some((alias) => alias.aliasName === values.alias);
      if (taken) throw new KmsError('InvalidRequest', `alias ${values.alias ?? ''} already exists`);
      const key = await provider.createKey();
      if (values.alias === undefined) return `created ${describe(key)}\n${RESTART}`;
      const alias = await provider.createAlias(values.alias, key.keyId);
      return `created ${describe(key)} with alias ${alias.aliasName}\n${RESTART}`;
    }
    case 'alias': {
      const alias = values.update ? await provider.updateAlias(first, second) : await provider.createAlias(first, second);
      return `${alias.aliasName} -> ${alias.keyArn}\n${RESTART}`;
    }
    case 'disable':
      return `disabled ${describe(await provider.disableKey(first))}\n${RESTART}`;
    case 'enable':
      return `enabled ${describe(await provider.enableKey(first))}\n${RESTART}`;
    case 'schedule-deletion': {
      const key = await provider.scheduleKeyDeletion(first, values.days === undefined ? undefined : Number(values.days));
      return `scheduled ${describe(key)}\n${RESTART}`;
    }
    case 'cancel-deletion':
      return `cancelled deletion of ${describe(await provider.cancelKeyDeletion(first))}\n${RESTART}`;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

async function listing(provider: LocalKeyProvider): Promise<string> {
  const keys = await provider.listKeys();
  const aliases = await provider.listAliases();
  return keys
    .map((key) => {
      const names = aliases.filter((alias) => alias.keyArn === key.keyArn).map((alias) => alias.aliasName);
      return `${key.keyId}  ${key.state}  created ${key.creationDate}${key.deletionDate ? `  deletion ${key.deletionDate}` : ''}${names.length > 0 ? `  ${names.join(' ')}` : ''}`;
    })
    .join('\n');
}

function describe(key: LocalKeyInfo): string {
  return `${key.keyArn} (${key.state}${key.deletionDate ? `, deletion ${key.deletionDate}` : ''})`;
}

if (isEntryPoint(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
