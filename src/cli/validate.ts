// `oai-batch validate` and `run --dry-run`. (Filled in with validate/estimate.)

import { ConfigError } from '../core/errors.js';
import type { PriceTable } from '../pricing/prices.js';
import type { CliIO } from './command.js';
import type { RunCliOptions } from './run.js';

export async function executeDryRun(_options: RunCliOptions, _prices: PriceTable, _io: CliIO): Promise<number> {
  throw new ConfigError('--dry-run is not available yet');
}
