// Every command of the CLI, in the order `--help` lists them.

import type { AnyCommandSpec } from './command.js';
import { runCommand } from './run.js';
import { simulateCommand } from './simulate.js';

export const COMMANDS: readonly AnyCommandSpec[] = [runCommand, simulateCommand];
