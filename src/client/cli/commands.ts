/** The subcommands, one file each: a new one is its file plus one line here. */
import type { Command } from './command.js';
import { decryptCommand } from './decrypt.js';
import { encryptCommand } from './encrypt.js';
import { headerCommand } from './header.js';
import { keysCommand } from './keys.js';
import { migrateCommand } from './migrate.js';
import { rewrapCommand } from './rewrap.js';

export const COMMANDS: readonly Command[] = [encryptCommand, decryptCommand, headerCommand, rewrapCommand, keysCommand, migrateCommand];
