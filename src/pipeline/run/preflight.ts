// What a run checks before it sends anything: the spend caps the flags set,
// and under a cap, that every model of the input has a price.

import type { CostLedger } from '../../pricing/ledger.js';
import { ConfigError } from '../../shared/errors.js';
import type { CapSetting } from '../limit/spend-cap.js';
import type { ResolvedRunOptions } from '../options.js';
import { modelOfRecord } from '../plan.js';
import { openInput, readRecords } from '../read.js';

/** The spend caps the flags set; --max-total-cost counts what earlier runs of the file spent. */
export function capSettings(o: ResolvedRunOptions, earlierCostUsd: number): CapSetting[] {
  const caps: CapSetting[] = [];
  if (o.maxCostUsd !== undefined) caps.push({ flag: '--max-cost', reason: 'max_cost', capUsd: o.maxCostUsd, spentUsd: 0 });
  if (o.maxTotalCostUsd !== undefined) {
    caps.push({ flag: '--max-total-cost', reason: 'max_total_cost', capUsd: o.maxTotalCostUsd, spentUsd: earlierCostUsd });
  }
  return caps;
}

/** Under a spend cap, every model must have a price before anything is sent (only each line's model is read: no planning). */
export async function refuseUnpricedModels(o: ResolvedRunOptions, ledger: CostLedger, flag: string): Promise<void> {
  const source = await openInput(o.input);
  const unpriced = new Set<string>();
  try {
    for await (const record of readRecords(source.stream, o.maxLineBytes)) {
      const model = modelOfRecord(record);
      if (model !== null && ledger.priceOf(model) === null) unpriced.add(model);
    }
  } finally {
    source.close();
  }
  if (unpriced.size > 0) throw unpricedUnderCap([...unpriced].sort(), flag);
}

export function unpricedUnderCap(models: string[], flag: string): ConfigError {
  return new ConfigError(`${flag} needs a price for every model, and ${models.join(', ')} has none: add it with --prices FILE`);
}

