// RunOptions for a run against a test's simulator: outputs beside the input,
// the test key, the built-in prices, a short timeout.

import type { RunOptions } from '../../src/pipeline/options.js';
import { loadPriceTable } from '../../src/shared/price-file.js';
import type { Simulator } from '../../src/sim/server.js';

const prices = loadPriceTable();

export function runOptionsFor(input: string, s: Pick<Simulator, 'url'> | string, apiKey: string, extra: Partial<RunOptions> = {}): RunOptions {
  const stem = input.replace(/\.jsonl$/, '');
  return {
    input,
    output: `${stem}.results.jsonl`,
    errors: `${stem}.errors.jsonl`,
    summary: `${stem}.summary.json`,
    transport: { baseUrl: typeof s === 'string' ? s : s.url, apiKey },
    prices,
    timeoutMs: 5000,
    ...extra,
  };
}
