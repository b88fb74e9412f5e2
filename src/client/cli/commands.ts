/** The subcommands, one file each: a new one is its file plus one line here. */
import type { Command } from './command.js';
import { encryptCommand } from './encrypt.js';
import { migrateCommand } from './migrate.js';

export const COMMANDS: readonly Command[] = [encryptCommand, migrateCommand];
