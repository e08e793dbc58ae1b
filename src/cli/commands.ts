// Every command of the CLI, in the order `--help` lists them.

import type { AnyCommandSpec } from './command.js';
import { batchCommand } from './batch.js';
import { runCommand } from './run.js';
import { simulateCommand } from './simulate.js';
import { usageCommand, costsCommand } from './org.js';
import { validateCommand } from './validate.js';
import { estimateCommand } from './estimate.js';
import { exportCommand } from './export.js';
import { compareCommand } from './compare.js';
import { mergeCommand } from './merge.js';
import { monitorCommand } from './monitor.js';
import { cacheCommand } from './cache.js';

export const COMMANDS: readonly AnyCommandSpec[] = [
  runCommand,
  simulateCommand,
  validateCommand,
  estimateCommand,
  compareCommand,
  mergeCommand,
  exportCommand,
  usageCommand,
  costsCommand,
  monitorCommand,
  batchCommand,
  cacheCommand,
];
