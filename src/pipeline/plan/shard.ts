// The lines of one shard (--shard I/N, DESIGN.md §6), picked before planning.
//
// In:  the input's RawRecords and a Shard (or none).  Out: the records whose
//      custom_id hashes to the shard; every other record is left out
//      entirely (not counted, not planned), so a shard's summary is about
//      its lines only.
// Owns: the shard key of a record, which is the custom_id plan.ts gives it:
//      a Batch-form line's own custom_id, else `line-N` (bare lines, and lines
//      that are not requests). A duplicate custom_id lands in the same shard as
//      its first use, so that shard reports it. A parsed line goes on parsed
//      (kind 'value'), so the shard's own lines are not parsed twice.

import { lineKey } from '../../shared/records.js';
import { isInShard, type Shard } from '../../shared/shard.js';
import type { RawRecord } from '../read.js';

export function inShard(records: AsyncIterable<RawRecord>, shard: Shard | undefined): AsyncIterable<RawRecord> {
  if (shard === undefined || shard.count === 1) return records;
  return pick(records, shard);
}

async function* pick(records: AsyncIterable<RawRecord>, shard: Shard): AsyncGenerator<RawRecord> {
  for await (const record of records) {
    const keyed = keyedRecord(record);
    if (isInShard(keyed.key, shard)) yield keyed.record;
  }
}

/** The custom_id `record` will plan to, and the record to plan (parsed when it was text). */
export function keyedRecord(record: RawRecord): { key: string; record: RawRecord } {
  let value: unknown;
  if (record.kind === 'text') {
    try {
      value = JSON.parse(record.text);
    } catch {
      return { key: lineKey(record.line), record };
    }
    record = { kind: 'value', line: record.line, value };
  } else if (record.kind === 'value') {
    value = record.value;
  } else {
    return { key: lineKey(record.line), record };
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && 'body' in value) {
    const id = (value as { custom_id?: unknown }).custom_id;
    if (typeof id === 'string' && id !== '') return { key: id, record };
  }
  return { key: lineKey(record.line), record };
}
